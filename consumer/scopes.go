package consumer

import (
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// Scopes keeps the scopes of one consumer target in the refresher in step
// with the objects its watch sees: Put as an object appears or changes, Drop
// as it goes. A scope whose registry must be one this process manages (an
// Argo CD repository, a ClusterRepo: those of other registries are not
// consumers of this daemon) is parked while it is not: taken out of the
// refresher, and put back when a later Put finds the registry managed. What
// is managed is learnt from the first plan (refresher.Input.Managed); before
// that every object is a scope, and its plan parks it if need be.
type Scopes struct {
	r   *refresher.Refresher
	log logrus.FieldLogger

	mu      sync.Mutex
	on      map[string]bool // scopes in the refresher, by name
	parked  map[string]bool // scopes left out: their registry is not managed
	managed func(host string) bool
	n       atomic.Int64 // len(on), read without the lock (Empty runs under the refresher's)
}

// NewScopes returns the bookkeeping of a target whose scopes go into r.
func NewScopes(r *refresher.Refresher, log logrus.FieldLogger) *Scopes {
	return &Scopes{r: r, log: log, on: map[string]bool{}, parked: map[string]bool{}}
}

// Put makes sc a scope for registry host: added when new, planned again when
// changed (the object changed since this process last wrote or read it).
// With onlyManaged it is parked instead while host is not managed.
func (s *Scopes) Put(sc refresher.Scope, host string, onlyManaged, changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if onlyManaged && s.managed != nil && !s.managed(host) {
		s.park(sc.Name, host)
		return
	}
	wasParked := s.parked[sc.Name]
	delete(s.parked, sc.Name)
	if s.on[sc.Name] && !changed && !wasParked {
		return
	}
	if !s.on[sc.Name] {
		s.on[sc.Name] = true
		s.n.Add(1)
	}
	s.r.AddScope(sc)
}

// Drop takes the scope name out: the object is gone or no consumer any more.
func (s *Scopes) Drop(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.parked, name)
	if s.on[name] {
		delete(s.on, name)
		s.n.Add(-1)
		s.r.RemoveScope(name)
	}
}

// Managed is asked by a plan of an onlyManaged scope: whether host is
// managed (then the scope is written). When it is not, the scope is parked:
// it plans nothing and leaves the refresher.
func (s *Scopes) Managed(want refresher.Input, name, host string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.managed == nil && want.Managed != nil {
		s.managed = want.Managed
	}
	if want.Managed != nil && want.Managed(host) {
		return true
	}
	s.park(name, host)
	return false
}

func (s *Scopes) park(name, host string) {
	if s.parked[name] {
		return
	}
	s.parked[name] = true
	if s.on[name] {
		delete(s.on, name)
		s.n.Add(-1)
		s.r.RemoveScope(name)
	}
	s.log.WithFields(logrus.Fields{"consumer": name, "registry": host}).Info("consumer left alone: its registry is not one this daemon manages")
}

// Unmanaged reports whether host is known not to be managed (false before
// the first plan tells).
func (s *Scopes) Unmanaged(host string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.managed != nil && !s.managed(host)
}

// Len is how many scopes are in the refresher.
func (s *Scopes) Len() int { return int(s.n.Load()) }
