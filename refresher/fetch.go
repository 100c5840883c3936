package refresher

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sirupsen/logrus"
)

// fetchGrace is how long past its own deadline a call is waited for: a client
// that ignores its context is given up on, and the run goes on without it.
const fetchGrace = 2 * time.Second

// fetchAll asks every source at once and returns their answers, in the order
// of Sources. Each call is bounded by its source's Timeout.
func (r *Refresher) fetchAll(ctx context.Context) []fetched {
	chans := make([]chan fetched, len(r.Sources))
	for i, src := range r.Sources {
		ch := make(chan fetched, 1)
		chans[i] = ch
		now := r.Now()
		go func() {
			defer func() {
				if p := recover(); p != nil {
					ch <- fetched{err: fmt.Errorf("ecr get authorization token (%s): internal error (a bug): %v", src.label(), p)}
				}
			}()
			ch <- src.fetch(ctx, now)
		}()
	}
	out := make([]fetched, len(r.Sources))
	start := time.Now()
	for i, ch := range chans {
		limit := cmp.Or(r.Sources[i].Timeout, DefaultCallTimeout) + fetchGrace
		t := time.NewTimer(max(limit-time.Since(start), 0))
		select {
		case out[i] = <-ch:
		case <-t.C:
			out[i] = fetched{err: fmt.Errorf("ecr get authorization token (%s): no answer within %s", r.Sources[i].label(), limit)}
		}
		t.Stop()
	}
	return out
}

// logFetchError logs a failed ECR call. Missing AWS credentials are explained
// in full once; later failures say so in a line.
func (r *Refresher) logFetchError(src Source, err error) {
	l := r.Logger.WithField("region", src.Region)
	var mc *MissingCredentialsError
	if errors.As(err, &mc) {
		r.mu.Lock()
		again := r.credsExplained
		r.credsExplained = true
		r.mu.Unlock()
		if again {
			l.Error("ecr token fetch failed: no AWS credentials found (what to set was logged at the first failure)")
			return
		}
	}
	l.WithError(err).Error("ecr token fetch failed")
}

// failUnanswered fails every due pair of a source that answered but gave no
// token for the pair's host: ECR stopped returning it (another account behind
// the endpoint, another proxyEndpoint form). Without this the pair would stay
// due in the past and every turn of the loop would call ECR again at once. A
// pair that has had no token for a whole token lifetime is forgotten, with one
// log line per host; what its scope holds is left as it is.
func (r *Refresher) failUnanswered(sel selection, answered []bool, tokens []Token) []error {
	got := map[string]bool{}
	for _, t := range tokens {
		got[t.Host] = true
	}
	now := r.Now()
	var errs []error
	dropped := map[string][]string{} // host → scopes
	r.mu.Lock()
	for k, p := range r.pairs {
		if got[k.host] || p.source >= len(answered) || !answered[p.source] || !sel.wants(Token{Host: k.host, source: p.source}, k.scope) {
			continue
		}
		if p.missingSince.IsZero() {
			p.missingSince = now
		}
		if now.Sub(p.missingSince) >= TokenLifetime {
			delete(r.pairs, k)
			dropped[k.host] = append(dropped[k.host], k.scope)
			continue
		}
		err := fmt.Errorf("%s in scope %s: ecr no longer returns a token for this registry (since %s)", k.host, k.scope, p.missingSince.UTC().Format(time.RFC3339))
		p.failures++
		p.LastError = err.Error()
		p.NextAttempt = r.retryAt(now, p.failures, err)
		errs = append(errs, err)
	}
	r.mu.Unlock()
	for _, err := range errs {
		r.Logger.WithError(err).Warn("credential not refreshed")
	}
	hosts := make([]string, 0, len(dropped))
	for h := range dropped {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	for _, h := range hosts {
		r.Logger.WithFields(logrus.Fields{"registry": h, "scopes": len(dropped[h])}).
			Warn("ecr has not returned a token for this registry for a whole token lifetime; it is no longer refreshed, and what the scopes hold is left as it is")
	}
	return errs
}
