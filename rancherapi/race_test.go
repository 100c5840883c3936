//go:build race

package rancherapi

// raceEnabled: the race detector slows decoding tenfold and distorts heap
// figures, so the memory-bound tests run without it.
const raceEnabled = true
