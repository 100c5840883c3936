package refresher

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// ParkMinScopes is how many scopes of a group must fail with one refusal,
// and more than half of the group, before only one of them (the probe) is
// retried every RefusedRetryInterval. A missing RBAC grant refuses every
// namespace alike: at 10,000 namespaces, retrying each every 30 s would be
// 333 refused writes a second, to learn what one write tells. Below this
// many, each scope is retried on its own, which costs less than a write a
// second and keeps its own recovery within a minute.
const ParkMinScopes = 20

// cause is one failure shared by scopes of a group: their errors read the
// same once each scope's name is taken out (causeText). It is logged once,
// when its first scope meets it, then summed up for the scopes that join it;
// while most of its group fails with it and it is a refusal, it is parked.
type cause struct {
	key    causeKey
	scopes int // scopes whose last pass failed with it
	// joined counts the scopes that took it on since it was last logged.
	joined int
	// example is the scope whose failure line was logged at Error.
	example string
	// probe, while the cause is parked, is the one scope retried every
	// RefusedRetryInterval; the others wait for it to succeed (or for
	// their own retry at RetryMaxInterval).
	probe *scopeState
}

type causeKey struct{ group, text string }

// group is what a scope is counted with (causes, metrics): its Group, or
// itself.
func (sc Scope) group() string { return cmp.Or(sc.Group, sc.Name) }

// causeText is an error's text with the scope's name (and a namespace's,
// the part after its last "/") taken out, so that one cause reads the same
// in every scope: `cannot update resource "secrets" in the namespace "…"`.
func causeText(text, scope string) string {
	text = cutName(text, scope)
	if i := strings.LastIndexByte(scope, '/'); i >= 0 {
		text = cutName(text, scope[i+1:])
	}
	return text
}

// cutName replaces each whole occurrence of name in text (not part of a
// longer name: bounded by characters no Kubernetes name holds) with "…".
func cutName(text, name string) string {
	if name == "" || !strings.Contains(text, name) {
		return text
	}
	var b strings.Builder
	for {
		i := strings.Index(text, name)
		if i < 0 {
			break
		}
		end := i + len(name)
		whole := (i == 0 || !nameByte(text[i-1])) && (end == len(text) || !nameByte(text[end]))
		if whole {
			b.WriteString(text[:i])
			b.WriteString("…")
		} else {
			b.WriteString(text[:end])
		}
		text = text[end:]
	}
	b.WriteString(text)
	return b.String()
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_'
}

// failLine is one failure a pass met, logged once the pass is booked: at
// Error when it is new for its scope (or its text changed) and no other scope
// of the group has its cause already, at Debug while it repeats. An operator
// reads one line per distinct cause, not one per scope and retry.
type failLine struct {
	log   logrus.FieldLogger
	msg   string
	err   error
	hosts []string // the pairs it is about; none: the scope as a whole
	stack string   // of a panic
	// repeat: the scope's last pass failed with exactly this already.
	repeat bool
}

// metBefore reports whether the scope's last pass booked this failure already.
// Call with r.mu held, before the pass is booked.
func (sc *scopeState) metBefore(l *failLine) bool {
	text := l.err.Error()
	if len(l.hosts) == 0 {
		return sc.lastErr() != "" && strings.Contains(sc.lastErr(), text)
	}
	for _, h := range l.hosts {
		p := sc.pair(h)
		if p == nil || p.lastErr == "" || !strings.Contains(p.lastErr, text) {
			return false
		}
	}
	return true
}

// logFailures logs a booked pass's failure lines; joined is set when the
// scope took on a cause other scopes of its group had already (logged then,
// summed up at the end of the run). It returns how many were logged at Error.
func logFailures(lines []failLine, joined bool) int {
	n := 0
	for _, l := range lines {
		e := l.log.WithError(l.err)
		if l.stack != "" {
			e = e.WithField("stack", l.stack)
		}
		if l.repeat || joined {
			e.Debug(l.msg)
			continue
		}
		n++
		e.Error(l.msg)
	}
	return n
}

// allPermanent reports whether every error of a pass is a refusal.
func allPermanent(errs []error) bool {
	for _, err := range errs {
		if !permanent(err) {
			return false
		}
	}
	return len(errs) > 0
}

// track books the cause of a scope's pass: err is its failure (nil: it
// succeeded), refusal whether each of its errors is a refusal retried every
// RefusedRetryInterval. A scope that joins a cause other scopes of its group
// have already reports joined. A refusal shared by most of a group is parked:
// one probe scope keeps the 30-second retry, the others wait for it (sooner
// if it succeeds or fails otherwise, at the latest at RetryMaxInterval).
// Call with r.mu held, after sc.retryAt is set.
func (r *Refresher) track(sc *scopeState, err error, refusal bool, now time.Time) (joined bool) {
	var key causeKey
	if err != nil {
		key = causeKey{sc.group(), causeText(err.Error(), sc.Name)}
	}
	if c := sc.cause(); c != nil && (err == nil || c.key != key) {
		r.leaveCause(sc, now)
	}
	if err == nil {
		sc.fail = nil
		return false
	}
	if sc.fail == nil {
		sc.fail = &scopeFail{}
	}
	c := sc.fail.cause
	if c == nil {
		if c = r.causes[key]; c == nil {
			c = &cause{key: key, example: sc.Name}
			r.causes[key] = c
		} else {
			joined = true
			c.joined++
		}
		c.scopes++
		sc.fail.cause = c
	}
	if !refusal {
		return joined
	}
	if c.probe == nil && c.scopes >= ParkMinScopes && 2*c.scopes > r.groupSizes[key.group] {
		c.probe = sc
		r.park(c, now)
		r.Logger.WithFields(logrus.Fields{"target": key.group, "scopes": c.scopes, "probe": sc.Name,
			"retry": r.refusedWait().String()}).
			Warn("most scopes of this target are refused alike; one of them is retried until it succeeds, then the others at once")
	}
	if c.probe != nil && c.probe != sc {
		r.parkOne(sc, now)
	}
	return joined
}

// park holds every scope of c but its probe until the probe succeeds.
func (r *Refresher) park(c *cause, now time.Time) {
	for _, sc := range r.scopes {
		if sc.cause() == c && sc != c.probe && !sc.busy {
			r.parkOne(sc, now)
		}
	}
}

// parkOne holds a scope of a parked cause: its own retry moves to within
// RetryMaxInterval, spread over its second half so they do not come together.
func (r *Refresher) parkOne(sc *scopeState, now time.Time) {
	half := r.RetryMaxInterval / 2
	sc.retryAt = now.Add(max(half+r.jitter(half), r.refusedWait()))
}

// leaveCause takes sc out of its cause: it succeeded, failed otherwise, or
// went. When it was the probe, the parked scopes are due at once.
func (r *Refresher) leaveCause(sc *scopeState, now time.Time) {
	c := sc.fail.cause
	sc.fail.cause = nil
	c.scopes--
	if c.probe == sc {
		released := 0
		for _, o := range r.scopes {
			if o.parked() && o.cause() == c {
				o.retryAt = now
				released++
			}
		}
		c.probe = nil
		if released > 0 {
			r.pokeLoop()
			r.Logger.WithFields(logrus.Fields{"target": c.key.group, "scopes": released, "probe": sc.Name}).
				Info("the refused scopes' probe no longer fails alike; the others are retried now")
		}
	}
	if c.scopes == 0 {
		delete(r.causes, c.key)
	}
}

// logJoined says, once per cause, how many more scopes met a failure already
// logged for another scope of their group; it returns how many lines it
// logged (news of the run, as fresh failures are).
func (r *Refresher) logJoined() int {
	type line struct {
		c      cause
		parked bool
	}
	var lines []line
	r.mu.Lock()
	for _, c := range r.causes {
		if c.joined > 0 {
			lines = append(lines, line{*c, c.probe != nil})
			c.joined = 0
		}
	}
	r.mu.Unlock()
	slices.SortFunc(lines, func(a, b line) int {
		return cmp.Or(cmp.Compare(a.c.key.group, b.c.key.group), cmp.Compare(a.c.key.text, b.c.key.text))
	})
	for _, l := range lines {
		r.Logger.WithFields(logrus.Fields{"target": l.c.key.group, "more": l.c.joined, "scopes": l.c.scopes, "like": l.c.example, "parked": l.parked}).
			WithError(errors.New(l.c.key.text)).Error("more scopes failed alike")
	}
	return len(lines)
}
