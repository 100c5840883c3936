package refresher

import (
	"cmp"
	"slices"
	"time"
)

// MaxListedPairs bounds the pairs /readyz lists, so its answer does not grow
// with the number of namespaces: those not ready come first.
const MaxListedPairs = 20

// PairStatus is the state of one (registry host, scope) pair, as /readyz shows
// it. It never holds a secret.
type PairStatus struct {
	Host        string    `json:"host"`
	Scope       string    `json:"scope"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	// NextAttempt is when the pair is written next, whatever the cron spec says.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
}

// ready reports whether the pair holds an unexpired credential this process wrote.
func (p PairStatus) ready(now time.Time) bool {
	return !p.LastSuccess.IsZero() && now.Before(p.ExpiresAt)
}

// SourceStatus is the state of one source (an identity's registries in a region).
type SourceStatus struct {
	Region      string    `json:"region"`
	Source      string    `json:"source"`
	Identity    string    `json:"identity,omitempty"`
	FetchedAt   time.Time `json:"fetched_at,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
}

// GroupStatus counts the scopes of a group (a target kind, or a configured
// scope) by their state for one registry host: fresh (written, its last
// write succeeded), failing (its last write failed, or what it holds has
// expired), pending (not written yet; registry empty).
type GroupStatus struct {
	Group    string `json:"target"`
	Registry string `json:"registry,omitempty"`
	Fresh    int    `json:"fresh"`
	Failing  int    `json:"failing"`
	Pending  int    `json:"pending"`
	// OldestExpiry is the earliest expiry among the credentials this process
	// wrote there, failing scopes' and expired ones included: what the
	// "expires soon" alert watches while refreshes fail.
	OldestExpiry time.Time `json:"oldest_expiry,omitzero"`
	// OldestSuccess is the oldest last success among them, zero while one
	// never succeeded.
	OldestSuccess time.Time `json:"-"`
	never         bool
	unheld        bool // a scope holds no unexpired credential of this process
}

// Readiness is the answer /readyz gives: bounded whatever the scope count.
type Readiness struct {
	Ready   bool          `json:"ready"`
	Reason  string        `json:"reason,omitempty"`
	Scopes  int           `json:"scopes"`
	Summary []GroupStatus `json:"summary"`
	// Pairs lists at most MaxListedPairs pairs, those not ready first;
	// PairsTotal is how many there are.
	Pairs      []PairStatus   `json:"pairs"`
	PairsTotal int            `json:"pairs_total"`
	Sources    []SourceStatus `json:"sources"`
}

// Status returns every pair, sorted by host then scope (for tests and the
// demo; /readyz lists a bounded part of it).
func (r *Refresher) Status() []PairStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []PairStatus
	for _, sc := range r.scopes {
		for _, p := range sc.pairs {
			out = append(out, r.pairStatus(sc, p))
		}
	}
	slices.SortFunc(out, func(a, b PairStatus) int {
		return cmp.Or(cmp.Compare(a.Host, b.Host), cmp.Compare(a.Scope, b.Scope))
	})
	return out
}

// pairStatus is a pair as shown. Call with r.mu held.
func (r *Refresher) pairStatus(sc *scopeState, p pairState) PairStatus {
	next := sc.retryAt
	if next.IsZero() {
		for _, s := range sc.ident.sources {
			for _, t := range s.tokens {
				if t.Host == p.host {
					next = s.nextAt
				}
			}
		}
	}
	return PairStatus{Host: p.host, Scope: sc.Name, LastSuccess: p.lastSuccess.time(), ExpiresAt: p.expiresAt.time(), LastError: p.lastErr, NextAttempt: next}
}

type groupKey struct{ group, host string }

// groups counts every scope's pairs by group and host, as readiness and the
// metrics report them. Call with r.mu held.
func (r *Refresher) groups(now time.Time, label func(Scope) string) map[groupKey]*GroupStatus {
	out := map[groupKey]*GroupStatus{}
	get := func(g, h string) *GroupStatus {
		k := groupKey{g, h}
		if out[k] == nil {
			out[k] = &GroupStatus{Group: g, Registry: h}
		}
		return out[k]
	}
	for _, sc := range r.scopes {
		g := label(sc.Scope)
		if !sc.planned || (len(sc.pairs) == 0 && sc.lastErr() != "") {
			gs := get(g, "")
			if sc.planned {
				gs.Failing++
			} else {
				gs.Pending++
			}
			continue
		}
		for _, p := range sc.pairs {
			gs := get(g, p.host)
			ps := PairStatus{LastSuccess: p.lastSuccess.time(), ExpiresAt: p.expiresAt.time()}
			held := p.held(now)
			if held && p.lastErr == "" {
				gs.Fresh++
			} else {
				gs.Failing++
			}
			gs.unheld = gs.unheld || !held
			if !ps.LastSuccess.IsZero() && (gs.OldestExpiry.IsZero() || ps.ExpiresAt.Before(gs.OldestExpiry)) {
				gs.OldestExpiry = ps.ExpiresAt
			}
			switch {
			case ps.LastSuccess.IsZero():
				gs.never = true
			case gs.OldestSuccess.IsZero() || ps.LastSuccess.Before(gs.OldestSuccess):
				gs.OldestSuccess = ps.LastSuccess
			}
		}
	}
	return out
}

// Readiness reports whether every scope holds, for every host it should, a
// credential this process wrote that has not expired at now, and why not.
func (r *Refresher) Readiness(now time.Time) Readiness {
	r.mu.Lock()
	defer r.mu.Unlock()
	rd := Readiness{Ready: true, Scopes: len(r.scopes), Summary: []GroupStatus{}, Pairs: []PairStatus{}, Sources: []SourceStatus{}}
	notReady := func(reason string) {
		if rd.Ready {
			rd.Ready, rd.Reason = false, reason
		}
	}
	for _, id := range r.identsSorted() {
		if id.name != "" && id.users == 0 {
			continue
		}
		for _, s := range id.sources {
			rd.Sources = append(rd.Sources, SourceStatus{Region: s.Region(), Source: s.Label(), Identity: id.name,
				FetchedAt: s.fetchedAt, LastError: s.lastErr, NextAttempt: s.nextAt})
			switch {
			case !s.ok && s.lastErr != "":
				notReady("ecr: " + s.lastErr)
			case !s.ok:
				notReady("no ECR token fetched yet for the " + s.Label())
			}
		}
	}
	if len(r.scopes) == 0 {
		notReady(r.noScopes())
	}
	// One pass keeps only what is shown: the first scope (by name) with
	// nothing written, and the first pairs by scope and host, not ready ones
	// first. A probe at 10,000 namespaces sorts nothing of the rest.
	bad, good := firstPairs{}, firstPairs{}
	var badScope *scopeState
	for _, sc := range r.scopes {
		if (!sc.planned || (len(sc.pairs) == 0 && sc.lastErr() != "")) && (badScope == nil || sc.Name < badScope.Name) {
			badScope = sc
		}
		for i := range sc.pairs {
			p := &sc.pairs[i]
			rd.PairsTotal++
			if p.held(now) {
				good.offer(sc, p)
			} else {
				bad.offer(sc, p)
			}
		}
	}
	switch {
	case badScope == nil:
	case badScope.lastErr() != "":
		notReady("scope " + badScope.Name + ": " + badScope.lastErr())
	default:
		notReady("no credential written yet in scope " + badScope.Name)
	}
	for _, e := range bad {
		p := r.pairStatus(e.sc, *e.p)
		switch {
		case p.LastSuccess.IsZero() && p.LastError != "":
			notReady("no credential written for " + p.Host + " in scope " + p.Scope + ": " + p.LastError)
		case p.LastSuccess.IsZero():
			notReady("no credential written for " + p.Host + " in scope " + p.Scope)
		default:
			notReady("the credential for " + p.Host + " in scope " + p.Scope + " has expired")
		}
		rd.Pairs = append(rd.Pairs, p)
	}
	for _, e := range good[:min(len(good), MaxListedPairs-len(rd.Pairs))] {
		rd.Pairs = append(rd.Pairs, r.pairStatus(e.sc, *e.p))
	}
	for _, g := range r.groups(now, r.Metrics.label) {
		rd.Summary = append(rd.Summary, *g)
	}
	slices.SortFunc(rd.Summary, func(a, b GroupStatus) int {
		return cmp.Or(cmp.Compare(a.Group, b.Group), cmp.Compare(a.Registry, b.Registry))
	})
	return rd
}

// firstPairs keeps the first MaxListedPairs pairs offered, by scope then
// host, sorted. Its pointers into scopes' pairs hold while r.mu is held.
type firstPairs []scopePair

type scopePair struct {
	sc *scopeState
	p  *pairState
}

func (f *firstPairs) offer(sc *scopeState, p *pairState) {
	order := func(x scopePair, _ struct{}) int {
		return cmp.Or(cmp.Compare(x.sc.Name, sc.Name), cmp.Compare(x.p.host, p.host))
	}
	i, _ := slices.BinarySearchFunc(*f, struct{}{}, order)
	if i == MaxListedPairs {
		return
	}
	if len(*f) == MaxListedPairs {
		*f = (*f)[:MaxListedPairs-1]
	}
	*f = slices.Insert(*f, i, scopePair{sc, p})
}

// identsSorted returns the identities, the daemon's own first. Call with r.mu held.
func (r *Refresher) identsSorted() []*identity {
	out := make([]*identity, 0, len(r.idents))
	for _, id := range r.idents {
		out = append(out, id)
	}
	slices.SortFunc(out, func(a, b *identity) int { return cmp.Compare(a.name, b.name) })
	return out
}

// NextDue is when something must be done next regardless of the cron spec: the
// earliest freshness guard or retry of a source in use, or retry of a scope;
// now while a source in use was never asked (a tenant's new identity) or a
// scope a pass could write is stale (a run cut short by its timeout did not
// reach it). Zero when nothing is pending.
func (r *Refresher) NextDue() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	now := r.Now()
	for _, id := range r.idents {
		if id.refused != nil || (id.name != "" && id.users == 0) {
			continue
		}
		for _, s := range id.sources {
			if s.nextAt.IsZero() {
				earlier(now)
			}
			earlier(s.nextAt)
		}
	}
	for _, sc := range r.scopes {
		// A busy scope is booked by its pass, which sets what comes next; one
		// no pass can write waits for its identity's tokens, above.
		switch {
		case sc.busy || sc.prev != nil || !sc.writable(now):
		case sc.stale():
			earlier(now)
		default:
			earlier(sc.retryAt)
		}
	}
	return next
}

// Healthy reports whether the daemon loop is alive and not stuck in a run.
func (r *Refresher) Healthy(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.loopExited {
		return false
	}
	return r.runStarted.IsZero() || now.Sub(r.runStarted) < r.RunTimeout+r.ShutdownTimeout+time.Minute
}

func (r *Refresher) setRunning(t time.Time) {
	r.mu.Lock()
	r.runStarted = t
	r.mu.Unlock()
}
