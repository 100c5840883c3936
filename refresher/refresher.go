// Package refresher keeps registry credentials fresh wherever a platform reads
// them: it fetches tokens from its Sources on a schedule and has every Scope's
// Target say what its objects should hold, then applies those writes, skips
// what it already wrote, and books every outcome for logs, /readyz and metrics.
// It knows no platform and no AWS API: targets live under targets/, the ECR
// source in ecrsource/. See docs/architecture.md.
package refresher

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

const (
	// DefaultRunTimeout bounds one run.
	DefaultRunTimeout = 5 * time.Minute
	// DefaultShutdownTimeout is how long a stop waits for a run in flight.
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultRetryMinInterval and DefaultRetryMaxInterval bound the backoff.
	DefaultRetryMinInterval = 30 * time.Second
	DefaultRetryMaxInterval = 15 * time.Minute
	// DefaultWorkers is how many scopes are written at once: 32 keep a
	// 10,000-namespace run within the API server's own floor on two cores
	// (BENCHMARKS.md, "Rate and run length"); 16 took 1.6 times it.
	DefaultWorkers = 32
	// RefusedRetryInterval is how often a scope the platform refuses (a Secret
	// that is someone else's, a missing grant) is tried again: such a cause
	// goes away by a person's hand, with no event this daemon watches, and
	// readiness must follow within a minute. Each try costs a read or a write
	// of that one scope, never an ECR call (tokens are kept in hand).
	RefusedRetryInterval = 30 * time.Second
)

// origin is where a scope came from.
type origin uint8

const (
	static     origin = iota // given to New
	discovered               // found by Discover; replaced at every discovery
	pushed                   // added by AddScope (a watch); removed by RemoveScope
)

// Refresher keeps registry credentials fresh. Set the exported fields before the
// first run and do not change them afterwards.
type Refresher struct {
	mu         sync.Mutex
	idents     map[string]*identity   // by name; "" is the daemon's own
	scopes     map[string]*scopeState // by name
	leaving    map[string]*scopeState // removed or replaced while being written, by name
	managed    map[string]bool        // every host this process has held tokens for
	causes     map[causeKey]*cause    // failures shared by scopes of a group
	groupSizes map[string]int         // scopes per group
	runStarted time.Time              // zero when no run is in flight
	loopExited bool
	wake       chan struct{}
	poke       chan struct{} // the loop computes when to wake again, without a run
	express    chan string   // scopes pushed while Run runs, written at once
	expressOn  bool
	lane       *yielder // runs hold back while express writes are in flight

	// Sources returns the sources of a tenant identity (the role a scope
	// names), one per region; scope is the first scope to ask, for the session
	// name. An error refuses the identity: its scopes fail with it and get no
	// credential at all. Nil refuses every tenant identity.
	Sources func(identity, scope string) ([]Source, error)
	// Discover, when set, finds scopes anew at every full run and on Wake
	// (RANCHER_PROJECTS=all): what it returns replaces what it returned before.
	Discover func(ctx context.Context) ([]Scope, error)
	// ExplainNoScopes, when set, says why there is no scope to write into
	// (a selector that matches nothing names the selector).
	ExplainNoScopes func() string
	// DryRun plans everything and logs the writes it would make, writing nothing.
	DryRun bool
	// Workers is how many scopes are written at once.
	Workers int
	// FetchTimeout bounds one source's fetch (DefaultFetchTimeout when zero).
	FetchTimeout time.Duration
	// ScopeTimeout bounds the writing of one scope, its plan's reads and
	// its writes (DefaultScopeTimeout when zero).
	ScopeTimeout time.Duration
	// RunTimeout bounds each run. What a run could not reach in time stays due
	// and is taken up by the next one at once.
	RunTimeout time.Duration
	// ShutdownTimeout is how long Run waits for a run in flight once ctx is done.
	ShutdownTimeout time.Duration
	// RetryMinInterval and RetryMaxInterval bound the backoff after a failure;
	// RetryMinInterval is also the shortest time between two fetches of a source.
	RetryMinInterval, RetryMaxInterval time.Duration
	// Metrics, when set, receives run and write outcomes.
	Metrics *Metrics
	// Logger receives one line per write and per failure, and one summary per run.
	Logger logrus.FieldLogger
	// Now is the clock; tests replace it.
	Now func() time.Time
	// NewTimer returns a channel that delivers once d has passed on the clock of
	// Now, and a function that stops it; tests replace it to drive Run on a fake
	// clock.
	NewTimer func(d time.Duration) (<-chan time.Time, func() bool)
	// Jitter returns a random duration in [0, d); tests replace it.
	Jitter func(d time.Duration) time.Duration
	// OnRunDone, when set, is called at the end of every run with its result.
	OnRunDone func(err error)
}

// New returns a refresher whose own identity asks sources, writing into
// scopes, with defaults for everything else.
func New(sources []Source, scopes []Scope) *Refresher {
	r := &Refresher{
		idents:           map[string]*identity{},
		scopes:           map[string]*scopeState{},
		leaving:          map[string]*scopeState{},
		managed:          map[string]bool{},
		causes:           map[causeKey]*cause{},
		groupSizes:       map[string]int{},
		wake:             make(chan struct{}, 1),
		poke:             make(chan struct{}, 1),
		express:          make(chan string, 4096),
		lane:             newYielder(),
		Workers:          DefaultWorkers,
		RunTimeout:       DefaultRunTimeout,
		ShutdownTimeout:  DefaultShutdownTimeout,
		RetryMinInterval: DefaultRetryMinInterval,
		RetryMaxInterval: DefaultRetryMaxInterval,
		Logger:           logrus.StandardLogger(),
		Now:              time.Now,
		NewTimer: func(d time.Duration) (<-chan time.Time, func() bool) {
			t := time.NewTimer(d)
			return t.C, t.Stop
		},
		Jitter: func(d time.Duration) time.Duration { return rand.N(max(d, 1)) },
	}
	own := &identity{}
	for _, s := range sources {
		own.sources = append(own.sources, &source{Source: s, ident: own})
	}
	r.idents[""] = own
	for _, sc := range scopes {
		r.putScope(sc, static)
	}
	return r
}

func (r *Refresher) jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return r.Jitter(d)
}

// Wake asks Run to find the scopes again (Discover) and write what is due now,
// without waiting for the schedule. It never blocks.
func (r *Refresher) Wake() {
	select {
	case r.wake <- struct{}{}:
	default: // a wake is already pending
	}
}

// AddScope adds a scope, or replaces the one of that name (a namespace whose
// role annotation changed), and has it written at once: with the tokens in
// hand, beside any run in flight (the express lane). It costs what the one
// scope costs: no run, no discovery. Before Run starts, the next run writes it.
func (r *Refresher) AddScope(sc Scope) {
	r.mu.Lock()
	r.putScope(sc, pushed)
	r.requeue(sc.Name)
	r.mu.Unlock()
}

// RemoveScope forgets a scope at once: nothing more is written there, what it
// holds is left as it is, and its state and per-scope metric series go.
func (r *Refresher) RemoveScope(name string) {
	r.mu.Lock()
	sc := r.scopes[name]
	if sc != nil {
		r.dropScope(sc)
	}
	r.mu.Unlock()
	if sc != nil {
		r.forget(sc)
	}
}

// putScope adds or replaces a scope. A scope already known under that name
// with the same identity keeps its state; a pushed one is planned again (its
// pusher saw it change), a discovered one keeps its Target. Call with r.mu held.
func (r *Refresher) putScope(sc Scope, o origin) {
	if old := r.scopes[sc.Name]; old != nil {
		if old.Identity == sc.Identity {
			if o == pushed {
				r.groupSizes[old.group()]--
				old.Scope = sc
				r.groupSizes[old.group()]++
				old.pushes++
			}
			old.origin = o
			return
		}
		r.dropScope(old)
	}
	st := &scopeState{Scope: sc, origin: o, prev: r.leaving[sc.Name]}
	st.ident = r.identityFor(st)
	st.ident.users++
	r.scopes[sc.Name] = st
	r.groupSizes[st.group()]++
}

// dropScope removes a scope's state. Call with r.mu held.
func (r *Refresher) dropScope(sc *scopeState) {
	delete(r.scopes, sc.Name)
	if r.groupSizes[sc.group()]--; r.groupSizes[sc.group()] <= 0 {
		delete(r.groupSizes, sc.group())
	}
	if sc.cause() != nil {
		r.leaveCause(sc, r.Now())
	}
	sc.removed = true
	if sc.busy {
		r.leaving[sc.Name] = sc
	}
	sc.ident.users--
	if sc.ident.name != "" && sc.ident.users == 0 {
		delete(r.idents, sc.ident.name)
	}
}

// setDiscovered replaces the discovered scopes with scopes.
func (r *Refresher) setDiscovered(scopes []Scope) {
	names := make(map[string]bool, len(scopes))
	var gone []*scopeState
	r.mu.Lock()
	for _, sc := range scopes {
		names[sc.Name] = true
		if old := r.scopes[sc.Name]; old == nil || old.origin != static {
			r.putScope(sc, discovered)
		}
	}
	for _, sc := range r.scopes {
		if sc.origin == discovered && !names[sc.Name] {
			gone = append(gone, sc)
		}
	}
	for _, sc := range gone {
		r.dropScope(sc)
	}
	r.mu.Unlock()
	for _, sc := range gone {
		r.forget(sc)
		r.Logger.WithField("scope", sc.Name).Info("scope no longer found; what it holds is left as it is")
	}
}

// forget drops a removed scope's per-scope metric series.
func (r *Refresher) forget(sc *scopeState) {
	hosts := make([]string, 0, len(sc.pairs))
	for _, p := range sc.pairs {
		hosts = append(hosts, p.host)
	}
	r.Metrics.forgetScope(sc.Name, hosts)
}

// Scopes returns the names of the current scopes, sorted.
func (r *Refresher) Scopes() []string {
	r.mu.Lock()
	names := make([]string, 0, len(r.scopes))
	for n := range r.scopes {
		names = append(names, n)
	}
	r.mu.Unlock()
	slices.Sort(names)
	return names
}

// isManaged reports whether host is one this process has held tokens for.
func (r *Refresher) isManaged(host string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.managed[host]
}
