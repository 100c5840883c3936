// Package plantest runs a target the way the refresher does — plan, then
// apply every write — so the targets' tests check what a pass does to the
// platform without a Refresher, its schedule or its ECR source.
package plantest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

// Token is a token for host with user AWS, fetched now and valid 12 hours.
func Token(host, password string) refresher.Token {
	now := time.Now()
	account, region, _ := registryhost.ParseECR(host)
	return refresher.Token{Host: host, ECRHost: host, RegistryID: account, Region: region, Username: "AWS",
		Password: password, FetchedAt: now, ExpiresAt: now.Add(refresher.TokenLifetime)}
}

// Input plans tokens; the hosts managed are theirs and also's (hosts whose
// token is not in hand this pass).
func Input(log logrus.FieldLogger, tokens []refresher.Token, also ...string) refresher.Input {
	managed := map[string]bool{}
	for _, t := range tokens {
		managed[t.Host] = true
	}
	for _, h := range also {
		managed[h] = true
	}
	return refresher.Input{Tokens: tokens, Managed: func(h string) bool { return managed[h] }, Log: log}
}

// Outcome is what one pass did.
type Outcome struct {
	Plan refresher.Plan
	// Results and Errors are per write of Plan.Writes: ResultFailed with the
	// error when Apply failed, ResultUnchanged when skipped as remembered.
	Results []refresher.Result
	Errors  []error
}

// Err joins every failure and failed write, each prefixed with its hosts as
// the refresher names them; nil when everything was written.
func (o Outcome) Err() error {
	var errs []error
	for _, f := range o.Plan.Failures {
		errs = append(errs, fmt.Errorf("%s: %w", f.Host, f.Err))
	}
	for i, err := range o.Errors {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", hosts(o.Plan.Writes[i].Tokens), err))
		}
	}
	return errors.Join(errs...)
}

// Count is how many writes ended with res.
func (o Outcome) Count(res refresher.Result) int {
	n := 0
	for _, r := range o.Results {
		if r == res {
			n++
		}
	}
	return n
}

// Write returns the planned write of object, failing t when there is none.
func (o Outcome) Write(t testing.TB, object string) refresher.Write {
	t.Helper()
	for _, w := range o.Plan.Writes {
		if w.Object == object {
			return w
		}
	}
	var objects []string
	for _, w := range o.Plan.Writes {
		objects = append(objects, w.Object)
	}
	t.Fatalf("no write of %q planned; the writes: %q", object, objects)
	return refresher.Write{}
}

// Memory is what the refresher remembers of its own writes: a write whose
// object it already wrote with the same content is skipped (unless Stale).
// The zero value remembers nothing yet.
type Memory struct {
	written map[string]string // object → content
}

// Run plans with in and applies every write, as one pass of the refresher
// that remembers nothing. The error is the plan's.
func Run(ctx context.Context, tg refresher.Target, want refresher.Input) (Outcome, error) {
	var m Memory
	return m.Run(ctx, tg, want)
}

// Run is one pass that skips what m remembers writing and remembers what it
// writes.
func (m *Memory) Run(ctx context.Context, tg refresher.Target, want refresher.Input) (Outcome, error) {
	plan, err := tg.Plan(ctx, want)
	o := Outcome{Plan: plan}
	if err != nil {
		return o, err
	}
	if m.written == nil {
		m.written = map[string]string{}
	}
	for _, w := range plan.Writes {
		c := content(w)
		if !w.Stale && m.written[w.Object] == c {
			o.Results, o.Errors = append(o.Results, refresher.ResultUnchanged), append(o.Errors, nil)
			continue
		}
		res, err := w.Apply(ctx)
		if err != nil {
			res = refresher.ResultFailed
		} else {
			m.written[w.Object] = c
		}
		o.Results, o.Errors = append(o.Results, res), append(o.Errors, err)
	}
	return o, nil
}

// content stands for what a write makes its object hold (the refresher
// hashes the same fields).
func content(w refresher.Write) string {
	toks := slices.SortedFunc(slices.Values(w.Tokens), func(a, b refresher.Token) int { return cmp.Compare(a.Host, b.Host) })
	parts := []string{w.Detail}
	for _, t := range toks {
		parts = append(parts, t.Host, t.Username, t.Password)
	}
	return strings.Join(parts, "\x00")
}

func hosts(toks []refresher.Token) string {
	var hs []string
	for _, t := range toks {
		hs = append(hs, t.Host)
	}
	return strings.Join(hs, ",")
}

// Permanent reports whether the refresher takes err for one retrying soon
// will not fix (retried only slowly): a Temporary() false in its chain, as
// refresher.Permanent marks it, and no network error.
func Permanent(err error) bool {
	var te interface{ Temporary() bool }
	if !errors.As(err, &te) {
		return false
	}
	if _, isNet := te.(net.Error); isNet {
		return false
	}
	return !te.Temporary()
}
