// Package testheap measures the live heap for tests and benchmarks that
// check memory: what stays in use, not what was allocated along the way.
package testheap

import "runtime"

// Live returns the heap in use after two full collections.
func Live() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
