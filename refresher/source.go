package refresher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Source fetches the login tokens of one AWS identity in one region: one
// GetAuthorizationToken call. The ecrsource package implements it.
type Source interface {
	// Fetch asks for fresh tokens; it returns once ctx is done at the latest.
	// Its errors should name the source (its Label); the refresher adds the
	// label to those that do not.
	Fetch(ctx context.Context) Fetched
	// Label names the source in logs and /readyz, e.g. "registries
	// 111122223333 in eu-west-1"; never a secret.
	Label() string
	// Region is the region asked, for metrics.
	Region() string
}

// Fetched is a source's answer.
type Fetched struct {
	// Tokens are the usable entries, one per host.
	Tokens []Token
	// Problems are entries that could not be used: the source counts as
	// failed (it is asked again with backoff), its Tokens are written still.
	Problems []error
	// Err means nothing usable came back.
	Err error
}

// DefaultFetchTimeout bounds one fetch, the client's own retries included, so
// one stalled region delays nothing else.
const DefaultFetchTimeout = 30 * time.Second

// fetchGrace is how long past its deadline a fetch is waited for: a client that
// ignores its context is given up on, and the run goes on without it.
const fetchGrace = 2 * time.Second

// identity is one AWS identity's sources, and the tokens they hold.
type identity struct {
	name    string // "" for the daemon's own
	sources []*source
	refused error  // a tenant identity the daemon may not use
	gen     uint64 // bumped whenever its tokens in hand change
	users   int    // scopes that use it; a tenant identity is dropped at 0
}

// source is a Source and what the refresher knows of it between runs.
type source struct {
	Source
	ident     *identity
	tokens    []Token // the last good answer
	ok        bool    // fetched successfully at least once
	fetchedAt time.Time
	nextAt    time.Time // next fetch: the freshness guard, or a retry
	failures  int
	lastErr   string
	// missing is when ECR stopped returning a host it had returned, per host.
	missing map[string]time.Time
}

// inHand returns the identity's unexpired tokens, sorted by host.
func (id *identity) inHand(now time.Time) []Token {
	var out []Token
	for _, s := range id.sources {
		for _, t := range s.tokens {
			if now.Before(t.ExpiresAt) {
				out = append(out, t)
			}
		}
	}
	slices.SortFunc(out, func(a, b Token) int { return cmp.Compare(a.Host, b.Host) })
	return out
}

// hasTokens reports whether the identity holds any unexpired token.
func (id *identity) hasTokens(now time.Time) bool {
	for _, s := range id.sources {
		for _, t := range s.tokens {
			if now.Before(t.ExpiresAt) {
				return true
			}
		}
	}
	return false
}

// fetched reports whether every source of the identity has answered once.
func (id *identity) fetched() bool {
	for _, s := range id.sources {
		if !s.ok {
			return false
		}
	}
	return true
}

// dueSources returns the sources to ask now: all of them in a full run,
// else those whose freshness guard or retry time has come; only of identities
// some scope uses, and always the daemon's own.
func (r *Refresher) dueSources(now time.Time, full bool) []*source {
	r.mu.Lock()
	defer r.mu.Unlock()
	var due []*source
	for _, id := range r.idents {
		if id.refused != nil || (id.name != "" && id.users == 0) {
			continue
		}
		for _, s := range id.sources {
			if full || !now.Before(s.nextAt) {
				due = append(due, s)
			}
		}
	}
	return due
}

// fetch asks the due sources at once, each under its own deadline, and books
// their answers. It returns the failures, each logged (at Error when new,
// at Debug when the source failed exactly so last time), and how many were new.
func (r *Refresher) fetch(ctx context.Context, due []*source) ([]error, int) {
	answers := make([]Fetched, len(due))
	var wg sync.WaitGroup
	for i, s := range due {
		wg.Go(func() { answers[i] = r.fetchOne(ctx, s) })
	}
	wg.Wait()
	var errs []error
	fresh := 0
	for i, s := range due {
		e, n := r.bookFetch(s, answers[i])
		errs, fresh = append(errs, e...), fresh+n
	}
	return errs, fresh
}

// fetchOne calls one source under FetchTimeout, and gives up on it a little
// after that if it ignores its context. A panic in it (a bug) fails the
// source only.
func (r *Refresher) fetchOne(ctx context.Context, s *source) Fetched {
	limit := cmp.Or(r.FetchTimeout, DefaultFetchTimeout)
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	ch := make(chan Fetched, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				ch <- Fetched{Err: fmt.Errorf("fetch tokens (%s): internal error (a bug): %v", s.Label(), p)}
			}
		}()
		ch <- s.Fetch(ctx)
	}()
	t := time.NewTimer(limit + fetchGrace)
	defer t.Stop()
	select {
	case f := <-ch:
		return f
	case <-t.C:
		return Fetched{Err: fmt.Errorf("fetch tokens (%s): no answer within %s", s.Label(), limit)}
	}
}

// bookFetch records an answer: the tokens in hand, the next fetch, and the
// hosts ECR stopped returning. It logs the failures, and returns them and how
// many were new.
func (r *Refresher) bookFetch(s *source, f Fetched) ([]error, int) {
	now := r.Now()
	log := r.Logger.WithField("region", s.Region())
	if s.ident.name != "" {
		log = log.WithField("identity", s.ident.name)
	}
	named := func(err error) error { return s.named(err) }
	fErr := named(f.Err)
	problems := make([]error, len(f.Problems))
	for i, e := range f.Problems {
		problems[i] = named(e)
	}
	err := fErr
	if err == nil {
		err = errors.Join(problems...)
	}
	r.mu.Lock()
	repeat := err != nil && s.lastErr == err.Error()
	r.mu.Unlock()
	var errs []error
	fresh := 0
	logErr := func(e error, msg string) {
		errs = append(errs, e)
		if repeat {
			log.WithError(e).Debug(msg)
			return
		}
		fresh++
		log.WithError(e).Error(msg)
	}
	if fErr != nil {
		logErr(fErr, "ecr token fetch failed")
	}
	for _, e := range problems {
		logErr(e, "ecr token unusable")
	}
	if err != nil {
		r.Metrics.ecrError(s.Region(), errorCode(err))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if f.Err == nil {
		r.takeTokens(s, f.Tokens, now)
	}
	if err == nil {
		s.failures, s.lastErr = 0, ""
		s.nextAt = r.guardAt(now, earliestExpiry(s.tokens, now))
		return nil, 0
	}
	s.failures++
	s.lastErr = err.Error()
	s.nextAt = r.retryAt(now, s.failures, err, r.RetryMaxInterval)
	if f.Err == nil && len(s.tokens) > 0 {
		s.nextAt = minTime(s.nextAt, r.guardAt(now, earliestExpiry(s.tokens, now)))
	}
	return errs, fresh
}

// named makes a fetch's error say which source it is about (a client's own
// context or network error does not), unless it already does.
func (s *source) named(err error) error {
	if err == nil || strings.Contains(err.Error(), s.Label()) {
		return err
	}
	return fmt.Errorf("%s: %w", s.Label(), err)
}

// takeTokens makes toks the source's tokens in hand; the identity's
// generation moves when they differ from what it held.
func (r *Refresher) takeTokens(s *source, toks []Token, now time.Time) {
	s.ok, s.fetchedAt = true, now
	got := map[string]bool{}
	for _, t := range toks {
		got[t.Host] = true
		r.managed[t.Host] = true
		delete(s.missing, t.Host)
	}
	for _, old := range s.tokens {
		if !got[old.Host] {
			if s.missing == nil {
				s.missing = map[string]time.Time{}
			}
			s.missing[old.Host] = now
		}
	}
	if !sameTokens(s.tokens, toks) {
		s.ident.gen++
	}
	s.tokens = slices.Clone(toks)
}

func sameTokens(a, b []Token) bool {
	return slices.EqualFunc(a, b, func(x, y Token) bool {
		return x.Host == y.Host && x.Username == y.Username && x.Password == y.Password && x.ExpiresAt.Equal(y.ExpiresAt)
	})
}

// earliestExpiry is the first expiry among toks; a missing one counts as a
// whole token lifetime from now.
func earliestExpiry(toks []Token, now time.Time) time.Time {
	exp := now.Add(TokenLifetime)
	for _, t := range toks {
		exp = minTime(exp, t.ExpiresAt)
	}
	return exp
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// heldByAny reports whether any source holds a token for host. Call with
// r.mu held.
func (r *Refresher) heldByAny(host string) bool {
	for _, id := range r.idents {
		for _, s := range id.sources {
			for _, t := range s.tokens {
				if t.Host == host {
					return true
				}
			}
		}
	}
	return false
}

// identityFor returns the identity a scope uses, creating a tenant's on first
// use through Sources. Call with r.mu held.
func (r *Refresher) identityFor(sc *scopeState) *identity {
	if id := r.idents[sc.Identity]; id != nil {
		return id
	}
	id := &identity{name: sc.Identity}
	r.idents[sc.Identity] = id
	if r.Sources == nil {
		id.refused = errors.New("this daemon takes no tenant identity (internal error: no Sources)")
		return id
	}
	srcs, err := r.Sources(sc.Identity, sc.Name)
	if err != nil {
		id.refused = Permanent(err)
		return id
	}
	for _, s := range srcs {
		id.sources = append(id.sources, &source{Source: s, ident: id})
	}
	return id
}

// dropMissing forgets hosts ECR has not returned for a whole token lifetime:
// what the scopes hold is left as it is, one line per host says so. A host
// another source still returns (another identity's) stays managed.
func (r *Refresher) dropMissing(now time.Time) {
	var gone []string
	r.mu.Lock()
	for _, id := range r.idents {
		for _, s := range id.sources {
			for h, since := range s.missing {
				if now.Sub(since) >= TokenLifetime {
					delete(s.missing, h)
					gone = append(gone, h)
				}
			}
		}
	}
	for _, h := range gone {
		if !r.heldByAny(h) {
			delete(r.managed, h)
		}
	}
	r.mu.Unlock()
	slices.Sort(gone)
	for _, h := range slices.Compact(gone) {
		r.Logger.WithFields(logrus.Fields{"registry": h}).
			Warn("ecr has not returned a token for this registry for a whole token lifetime; it is no longer refreshed, and what the scopes hold is left as it is")
	}
}
