// Package logbuf is the log sink the tests share: what a logger wrote, safe to
// write and read from several goroutines at once.
package logbuf

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer guarded for concurrent Write and String.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
