package refresher_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// readinessOf is the /readyz answer with n namespaces of which the first
// failing fail, after a run.
func readinessOf(t *testing.T, n, failing int) (refresher.Readiness, []byte) {
	t.Helper()
	e := readinessEnv(t, n, failing)
	rd := e.r.Readiness(e.clock.Now())
	b, err := json.Marshal(rd)
	if err != nil {
		t.Fatal(err)
	}
	return rd, b
}

// readinessEnv has n namespaces of which the first failing fail, after a run.
func readinessEnv(t *testing.T, n, failing int) *env {
	t.Helper()
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA, hostB}, life: 12 * time.Hour}
	var scopes []refresher.Scope
	for i := range n {
		tg := &fakeTarget{}
		if i < failing {
			tg.ApplyFunc = func(context.Context, int) (refresher.Result, error) { return "", tempErr("503 Service Unavailable") }
		}
		// Fixed-width names, so sizes compare; failing ones sort last.
		scopes = append(scopes, refresher.Scope{Name: fmt.Sprintf("ns-%06d", n-i), Group: "namespaces", Target: tg})
	}
	e := newEnv(t, []refresher.Source{src}, scopes...)
	_ = e.r.RunOnce(t.Context())
	return e
}

// A /readyz probe costs about the same at 3,000 namespaces as at 300: it
// keeps what it shows, it does not sort every pair (measured in bytes
// allocated, the least of five probes; not a timed test).
func TestReadiness_CostDoesNotGrow(t *testing.T) { // not parallel: it reads the process's allocation counters
	allocated := func(n int) uint64 {
		e := readinessEnv(t, n, 3)
		least := uint64(math.MaxUint64)
		for range 5 {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			e.r.Readiness(e.clock.Now())
			runtime.ReadMemStats(&after)
			least = min(least, after.TotalAlloc-before.TotalAlloc)
		}
		return least
	}
	small, large := allocated(300), allocated(3000)
	if large > 2*small+16<<10 {
		t.Errorf("a /readyz probe allocates %d bytes at 300 namespaces, %d at 3,000: it grows with them", small, large)
	}
	t.Logf("a /readyz probe allocates %d bytes at 300 namespaces, %d at 3,000", small, large)
}

// /readyz lists at most MaxListedPairs pairs, those not ready first, and its
// size does not grow with the number of namespaces (issue 22, item 3).
func TestReadiness_Bounded(t *testing.T) {
	t.Parallel()
	small, sb := readinessOf(t, 10, 3)
	large, lb := readinessOf(t, 3000, 3)
	for _, rd := range []refresher.Readiness{small, large} {
		if rd.Ready {
			t.Fatal("ready with failing scopes")
		}
		if len(rd.Pairs) > refresher.MaxListedPairs {
			t.Errorf("%d pairs listed, want at most %d", len(rd.Pairs), refresher.MaxListedPairs)
		}
		// The failing pairs (failing scopes × 2 hosts) come first.
		for i, p := range rd.Pairs {
			if wantErr := i < 6; (p.LastError != "") != wantErr {
				t.Errorf("pair %d (%s in %s) error %q: the failing ones must come first", i, p.Host, p.Scope, p.LastError)
			}
		}
	}
	if got, want := large.PairsTotal, 6000; got != want {
		t.Errorf("pairs_total = %d, want %d", got, want)
	}
	var fresh, failing int
	for _, g := range large.Summary {
		fresh += g.Fresh
		failing += g.Failing
	}
	if fresh != 2*2997 || failing != 6 {
		t.Errorf("summary counts fresh=%d failing=%d, want %d and 6", fresh, failing, 2*2997)
	}
	if d := len(lb) - len(sb); d < -16 || d > 16 {
		t.Errorf("/readyz is %d bytes at 10 namespaces, %d at 3,000: it grows with them", len(sb), len(lb))
	}
	if !strings.Contains(large.Reason, "503 Service Unavailable") {
		t.Errorf("reason %q does not say what fails", large.Reason)
	}
	t.Logf("/readyz: %d bytes at 10 namespaces, %d at 3,000", len(sb), len(lb))
}

// summary parses the last "run finished" line's counts.
func (e *env) summary(t *testing.T) (written, unchanged, failed int) {
	t.Helper()
	var last string
	for l := range strings.SplitSeq(e.log.String(), "\n") {
		if strings.Contains(l, `msg="run finished`) {
			last = l
		}
	}
	num := func(k string) int {
		m := regexp.MustCompile(` ` + k + `=(\d+)`).FindStringSubmatch(last)
		if m == nil {
			t.Fatalf("no %s in the summary %q", k, last)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return num("written"), num("unchanged"), num("failed")
}

// A dry run plans and checks everything and applies nothing; what would fail
// still fails the run (the exit code of --dry-run --once).
func TestRefresher_DryRun(t *testing.T) {
	t.Parallel()
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA}, life: 12 * time.Hour, pwLen: 2400}
	ok := &fakeTarget{}
	noCheck := &fakeTarget{}
	noCheck.PlanFunc = func(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
		w := noCheck.write("obj", want.Tokens)
		w.Check = nil
		return refresher.Plan{Writes: []refresher.Write{w}}, nil
	}
	foreign := &fakeTarget{}
	foreign.PlanFunc = func(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
		w := foreign.write("obj", want.Tokens)
		w.Check = func(context.Context) (refresher.Result, error) {
			return "", refresher.Permanent(errors.New("secret ns/ecr-credentials exists and is not managed by this process"))
		}
		return refresher.Plan{Writes: []refresher.Write{w}}, nil
	}
	e := newEnv(t, []refresher.Source{src}, scope("a", ok), scope("b", noCheck), scope("c", foreign))
	e.r.DryRun = true
	err := e.r.RunOnce(t.Context())
	if err == nil || !strings.Contains(err.Error(), "not managed by this process") {
		t.Fatalf("dry run err = %v, want what the real run would meet", err)
	}
	if ok.applied()+noCheck.applied()+foreign.applied() != 0 {
		t.Error("a dry run applied a write")
	}
	if ok.checked() != 1 {
		t.Errorf("Check called %d times, want 1", ok.checked())
	}
	for _, want := range []string{"dry run: would create secret", "dry run: would update secret", "dry_run=true"} {
		if !strings.Contains(e.log.String(), want) {
			t.Errorf("no %q in:\n%s", want, e.log)
		}
	}
	// A second dry run checks again: nothing was written, nothing is remembered.
	_ = e.r.RunOnce(t.Context())
	if ok.checked() != 2 || ok.applied() != 0 {
		t.Errorf("second dry run: %d checks, %d applies; want 2 and 0", ok.checked(), ok.applied())
	}
	rd, _ := json.Marshal(e.r.Readiness(e.clock.Now()))
	noSecrets(t, "log", e.log.String(), password(hostA, "", 1, 2400), password(hostA, "", 2, 2400))
	noSecrets(t, "readiness", string(rd), password(hostA, "", 1, 2400), password(hostA, "", 2, 2400))
	noSecrets(t, "error", err.Error(), password(hostA, "", 1, 2400))
}

// The summary's counts are the per-write lines': one line per object written,
// left unchanged or failed (issue 18, item 3). A failure is logged at Error
// when it is new and at Debug when it repeats (issue 22, item 6).
func TestRefresher_SummaryMatchesTheLines(t *testing.T) {
	t.Parallel()
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA, hostB}, life: 12 * time.Hour}
	same := &fakeTarget{ApplyFunc: func(context.Context, int) (refresher.Result, error) { return refresher.ResultUnchanged, nil }}
	// Two objects, each holding both hosts; one of them fails.
	broken := &fakeTarget{}
	broken.PlanFunc = func(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
		w := broken.write("bad", want.Tokens)
		w.Apply = func(context.Context) (refresher.Result, error) { return "", tempErr("409 Conflict") }
		return refresher.Plan{Writes: []refresher.Write{broken.write("good", want.Tokens), w}}, nil
	}
	refused := &fakeTarget{PlanFunc: func(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
		return refresher.Plan{Failures: []refresher.Failure{{Host: hostA, Err: refresher.Permanent(errors.New("no registry for it"))}}}, nil
	}}
	e := newEnv(t, []refresher.Source{src}, scope("fresh", &fakeTarget{}), scope("same", same), scope("two", broken), scope("refused", refused))
	check := func(run, level string) {
		t.Helper()
		w, u, f := e.summary(t)
		lw := e.count(`msg="secret updated"`) + e.count(`msg="secret created"`)
		lu := e.count(`msg="secret unchanged"`)
		lf := e.count(`msg="credential not written"`)
		if w != lw || u != lu || f != lf {
			t.Errorf("%s: summary written=%d unchanged=%d failed=%d; lines say %d, %d, %d:\n%s", run, w, u, f, lw, lu, lf, e.log)
		}
		if n := e.count(`msg="credential not written"`, "level="+level); n != lf {
			t.Errorf("%s: %d of %d failure lines at level %s:\n%s", run, n, lf, level, e.log)
		}
	}
	_ = e.r.RunOnce(t.Context())
	check("first run", "error")
	if w, u, f := e.summary(t); w != 2 || u != 1 || f != 2 {
		t.Errorf("first run: written=%d unchanged=%d failed=%d, want 2, 1, 2", w, u, f)
	}
	// The retries: the object written before is skipped (unchanged), the
	// other fails again.
	e.newLog()
	e.clock.Set(e.r.NextDue())
	_ = e.r.RunDue(t.Context())
	check("retry", "debug")
	if w, u, f := e.summary(t); w != 0 || u != 1 || f != 2 {
		t.Errorf("retry: written=%d unchanged=%d failed=%d, want 0, 1, 2", w, u, f)
	}
}

// A scope that panics is one failure and one line, stack included.
func TestRefresher_SummaryMatchesTheLines_Panic(t *testing.T) {
	t.Parallel()
	src := sourceA()
	bad := &fakeTarget{}
	bad.PlanFunc = func(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
		w := bad.write("obj", want.Tokens)
		w.Apply = func(context.Context) (refresher.Result, error) { panic("a bug in a target") }
		return refresher.Plan{Writes: []refresher.Write{bad.write("first", want.Tokens), w}}, nil
	}
	e := newEnv(t, []refresher.Source{src}, scope("a", bad))
	_ = e.r.RunOnce(t.Context())
	if w, u, f := e.summary(t); w != 1 || u != 0 || f != 1 {
		t.Errorf("written=%d unchanged=%d failed=%d, want 1, 0, 1 (the write before the panic counts)", w, u, f)
	}
	if n := e.count("level=error"); n != 1 || e.count("level=error", "stack=") != 1 {
		t.Errorf("%d error lines, want 1 with the stack:\n%s", n, e.log)
	}
}
