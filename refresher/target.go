package refresher

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
)

// Target is one place credentials are written: a Rancher 1.x environment, a
// Rancher 2.x project, a Kubernetes namespace. Each lives in its own package
// under targets/ and owns its platform's rules; the refresher only schedules and
// keeps the books.
type Target interface {
	// Sync writes the due tokens (a subset of all, every token fetched this
	// run) and reports each due token's outcome with rec.Done. A returned error
	// fails every due token not reported yet: the scope could not be read at all.
	Sync(ctx context.Context, due, all []Token, rec *Recorder) error
}

// Scope is a Target with the name used in logs, /readyz and metrics.
type Scope struct {
	Name   string
	Target Target
}

// Content identifies what an object holds, passwords included (a hash: the
// passwords themselves are never kept).
type Content [sha256.Size]byte

// Hash returns the Content of the given fields, in order.
func Hash(fields ...string) Content {
	h := sha256.New()
	for _, f := range fields {
		h.Write([]byte(f))
		h.Write([]byte{0})
	}
	var c Content
	h.Sum(c[:0])
	return c
}

// Recorder is the bookkeeping a Target reports through: one per scope and run.
// It is safe for concurrent use.
type Recorder struct {
	r       *Refresher
	scope   string
	log     logrus.FieldLogger
	c       *counts
	managed map[string]bool // read only: shared by the run's recorders

	mu       sync.Mutex
	reported map[string]bool // hosts whose outcome was reported
	errs     []error
}

func (r *Refresher) newRecorder(scope string, managed map[string]bool, c *counts) *Recorder {
	return &Recorder{r: r, scope: scope, log: r.Logger.WithField("scope", scope), c: c, managed: managed, reported: map[string]bool{}}
}

// Scope is the name of the scope being written.
func (rec *Recorder) Scope() string { return rec.scope }

// Log is the run's logger with the scope field set.
func (rec *Recorder) Log() logrus.FieldLogger { return rec.log }

// DryRun reports whether writes are only to be logged ("dry run: would …").
func (rec *Recorder) DryRun() bool { return rec.r.DryRun }

// Managed reports whether host is one this process writes: a host of this run's
// tokens or of any pair it has known.
func (rec *Recorder) Managed(host string) bool { return rec.managed[host] }

// Unchanged reports whether this process already wrote exactly c under id in
// this scope, and if so counts t as unchanged. Platforms never give passwords
// back, so memory is the only way to know; after a restart the first run writes.
func (rec *Recorder) Unchanged(id string, c Content, t Token) bool {
	if !rec.r.wrote(rec.scope, id, c) {
		return false
	}
	rec.c.unchanged.Add(1)
	rec.r.Metrics.write(t.Host, rec.scope, "unchanged")
	return true
}

// Written books a write the platform accepted (result "created" or "updated")
// of content c under id for t: remembered so the same content is not written
// again, counted for the run's summary, and measured. others are the other
// tokens the same object carries; their expiry is measured too.
func (rec *Recorder) Written(id string, c Content, result string, t Token, others ...Token) {
	rec.r.remember(rec.scope, id, c)
	rec.c.written.Add(1)
	rec.r.Metrics.write(t.Host, rec.scope, result)
	rec.r.Metrics.written(t.Host, rec.scope, t.ExpiresAt)
	for _, o := range others {
		rec.r.Metrics.written(o.Host, rec.scope, o.ExpiresAt)
	}
}

// Done records the outcome of the pair (t.Host, this scope): nil when it holds
// t (written, unchanged, or in a dry run planned). A failure is logged once,
// counted, shown in /readyz and retried with backoff.
func (rec *Recorder) Done(t Token, err error) {
	rec.mu.Lock()
	rec.reported[t.Host] = true
	rec.mu.Unlock()
	rec.r.recordPair(t, rec.scope, rec.r.Now(), err)
	if err == nil {
		return
	}
	rec.r.Metrics.write(t.Host, rec.scope, "failed")
	err = fmt.Errorf("%s in scope %s: %w", t.Host, rec.scope, err)
	rec.log.WithField("registry", t.Host).WithError(err).Error("credential not written")
	rec.mu.Lock()
	rec.errs = append(rec.errs, err)
	rec.mu.Unlock()
}

// finish fails the due tokens that Sync did not report: all of them, with err,
// when the scope failed as a whole.
func (rec *Recorder) finish(due []Token, err error) []error {
	rec.mu.Lock()
	var missing []Token
	for _, t := range due {
		if !rec.reported[t.Host] {
			missing = append(missing, t)
		}
	}
	errs := rec.errs
	rec.mu.Unlock()
	if len(missing) == 0 {
		return errs
	}
	if err == nil {
		err = errors.New("internal error: the target reported no outcome")
	}
	err = fmt.Errorf("scope %s: %w", rec.scope, err)
	rec.log.WithError(err).Error("scope failed")
	for _, t := range missing {
		rec.r.recordPair(t, rec.scope, rec.r.Now(), err)
		rec.r.Metrics.write(t.Host, rec.scope, "failed")
	}
	return append(errs, err)
}

// permanentError marks an error that retrying soon will not fix.
type permanentError struct{ error }

func (e permanentError) Unwrap() error   { return e.error }
func (e permanentError) Temporary() bool { return false }

// Permanent marks err as one that retrying soon will not fix (a missing
// registry, a refused permission, a malformed answer): it is retried only after
// RetryMaxInterval, so servers are not hammered.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// permanent reports whether an error will not go away by itself soon. Each
// client and target answers for its own errors through a Temporary() bool
// method anywhere in the chain; network and context errors are temporary.
func permanent(err error) bool {
	var pe permanentError
	if errors.As(err, &pe) {
		return true
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.As(err, &ne) {
		return false
	}
	var te interface{ Temporary() bool }
	if errors.As(err, &te) {
		return !te.Temporary()
	}
	return false
}

// validUTF8 keeps a label value that Prometheus accepts: client_golang panics on
// invalid UTF-8.
func validUTF8(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
