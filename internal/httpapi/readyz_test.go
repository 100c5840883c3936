package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// oneToken is a source that always hands out the same token.
type oneToken struct{ tok refresher.Token }

func (s oneToken) Fetch(context.Context) refresher.Fetched {
	return refresher.Fetched{Tokens: []refresher.Token{s.tok}}
}
func (s oneToken) Label() string  { return "registries in " + s.tok.Region }
func (s oneToken) Region() string { return s.tok.Region }

// secretTarget writes one object per scope, or is refused.
type secretTarget struct{ refused bool }

func (t secretTarget) Plan(_ context.Context, want refresher.Input) (refresher.Plan, error) {
	if t.refused {
		return refresher.Plan{Failures: []refresher.Failure{{Host: want.Tokens[0].Host, Err: refresher.Permanent(errors.New("the secret is someone else's"))}}}, nil
	}
	return refresher.Plan{Writes: []refresher.Write{{What: "secret", Object: "ns/ecr", Tokens: want.Tokens, Action: refresher.ResultCreated,
		Apply: func(context.Context) (refresher.Result, error) { return refresher.ResultCreated, nil }}}}, nil
}

// /readyz of a refresher holding 500 namespace scopes stays small: a summary
// per group and registry, at most refresher.MaxListedPairs pairs, the ones not
// ready first, with their reasons.
func TestHandler_ReadyzBounded(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tok := refresher.Token{Host: "111122223333.dkr.ecr.us-east-1.amazonaws.com", Region: "us-east-1", Username: "AWS",
		Password: "PASSWORD-DO-NOT-LEAK", FetchedAt: now, ExpiresAt: now.Add(12 * time.Hour)}
	var scopes []refresher.Scope
	for i := range 500 {
		scopes = append(scopes, refresher.Scope{Name: fmt.Sprintf("ns-%03d", i), Group: "namespaces", Target: secretTarget{refused: i%100 == 7}})
	}
	r := refresher.New([]refresher.Source{oneToken{tok}}, scopes)
	l := logrus.New()
	l.SetOutput(io.Discard)
	r.Logger = l
	reg := prometheus.NewRegistry()
	r.Metrics = refresher.NewMetrics(reg)
	if err := r.RunOnce(t.Context()); err == nil {
		t.Fatal("RunOnce succeeded with refused scopes")
	}
	code, body := get(t, Handler(r, nil, reg), "/readyz")
	var rd refresher.Readiness
	if err := json.Unmarshal([]byte(body), &rd); err != nil || code != 503 {
		t.Fatalf("/readyz = %d %.300s (%v)", code, body, err)
	}
	if len(rd.Pairs) != refresher.MaxListedPairs || rd.PairsTotal != 500 || rd.Scopes != 500 {
		t.Errorf("pairs %d of %d, scopes %d: want %d of 500", len(rd.Pairs), rd.PairsTotal, rd.Scopes, refresher.MaxListedPairs)
	}
	for i, p := range rd.Pairs[:5] {
		if p.LastError == "" || !strings.Contains(p.LastError, "someone else's") {
			t.Errorf("pair %d (%s) is not one of the 5 failing, listed first: %+v", i, p.Scope, p)
		}
	}
	if len(rd.Summary) != 1 || rd.Summary[0].Group != "namespaces" || rd.Summary[0].Fresh != 495 || rd.Summary[0].Failing != 5 {
		t.Errorf("summary = %+v, want namespaces: 495 fresh, 5 failing", rd.Summary)
	}
	if !strings.Contains(rd.Reason, "ns-007") {
		t.Errorf("reason %q does not name the first failing scope", rd.Reason)
	}
	if len(body) > 16<<10 || strings.Contains(body, tok.Password) {
		t.Errorf("/readyz body: %d bytes, holds the password: %v", len(body), strings.Contains(body, tok.Password))
	}
}
