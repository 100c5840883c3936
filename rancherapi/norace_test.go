//go:build !race

package rancherapi

const raceEnabled = false
