package refresher_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// value returns the value of the series of name whose labels include want, or
// -1 when there is none.
func value(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue series
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// series counts every series the registry exports.
func series(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	return n
}

// metricsEnv is n namespaces, one of them failing, and one configured scope,
// after a run, with the refresher's metrics registered.
func metricsEnv(t *testing.T, n int, perScope bool) (*env, *prometheus.Registry) {
	t.Helper()
	src := &fakeSource{region: "us-east-1", hosts: []string{hostA, hostB}, life: 12 * time.Hour}
	scopes := []refresher.Scope{scope("1a5", &fakeTarget{})}
	for i := range n {
		tg := &fakeTarget{}
		if i == 0 {
			tg.ApplyFunc = func(context.Context, int) (refresher.Result, error) { return "", tempErr("503 Service Unavailable") }
		}
		scopes = append(scopes, refresher.Scope{Name: fmt.Sprintf("ns-%d", i), Group: "namespaces", Target: tg})
	}
	e := newEnv(t, []refresher.Source{src}, scopes...)
	reg := prometheus.NewRegistry()
	e.r.Metrics = refresher.NewMetrics(reg)
	e.r.Metrics.PerScope = perScope
	reg.MustRegister(e.r.Collector())
	_ = e.r.RunOnce(t.Context())
	return e, reg
}

// By default series are per group (target kind) and registry: as many at 50
// namespaces as at 10; with PerScope, one set per namespace (issue 22, item 3).
func TestMetrics_SeriesPerGroup(t *testing.T) {
	t.Parallel()
	_, reg10 := metricsEnv(t, 10, false)
	_, reg50 := metricsEnv(t, 50, false)
	if a, b := series(t, reg10), series(t, reg50); a != b {
		t.Errorf("series: %d at 10 namespaces, %d at 50; want the same", a, b)
	}
	_, per10 := metricsEnv(t, 10, true)
	_, per50 := metricsEnv(t, 50, true)
	a, b := series(t, per10), series(t, per50)
	if b <= a {
		t.Errorf("PerScope series: %d at 10 namespaces, %d at 50; want one set per namespace", a, b)
	}
	if got := value(t, per50, "rancher_ecr_credentials_credential_fresh", map[string]string{"registry": hostA, "scope": "ns-7"}); got != 1 {
		t.Errorf("PerScope fresh{ns-7} = %v, want 1", got)
	}
	t.Logf("series: default %d/%d, per scope %d/%d (10/50 namespaces)", series(t, reg10), series(t, reg50), a, b)
}

// What an operator alerts on, per group: counts of fresh and failing scopes,
// freshness that follows the clock between runs (a stalled loop shows), the
// oldest expiry, writes by result, runs, ECR errors by code.
func TestMetrics_AlertableSeries(t *testing.T) {
	t.Parallel()
	e, reg := metricsEnv(t, 10, false)
	scopes := func(state string) float64 {
		return value(t, reg, "rancher_ecr_credentials_scopes", map[string]string{"target": "namespaces", "registry": hostA, "state": state})
	}
	if f, b := scopes("fresh"), scopes("failing"); f != 9 || b != 1 {
		t.Errorf("scopes{namespaces,%s} fresh=%v failing=%v, want 9 and 1", hostA, f, b)
	}
	nsA := map[string]string{"registry": hostA, "scope": "namespaces"}
	if got := value(t, reg, "rancher_ecr_credentials_credential_fresh", nsA); got != 0 {
		t.Errorf("fresh{namespaces} = %v with one failing, want 0", got)
	}
	own := map[string]string{"registry": hostA, "scope": "1a5"}
	if got := value(t, reg, "rancher_ecr_credentials_credential_fresh", own); got != 1 {
		t.Errorf("fresh{1a5} = %v, want 1", got)
	}
	if got, want := value(t, reg, "rancher_ecr_credentials_token_expiry_timestamp_seconds", nsA), float64(t0.Add(12*time.Hour).Unix()); got != want {
		t.Errorf("token_expiry{namespaces} = %v, want %v", got, want)
	}
	if got := value(t, reg, "rancher_ecr_credentials_scope_last_success_timestamp_seconds", map[string]string{"scope": "namespaces"}); got != 0 {
		t.Errorf("scope_last_success{namespaces} = %v while one never succeeded, want 0", got)
	}
	if got := value(t, reg, "rancher_ecr_credentials_scope_last_success_timestamp_seconds", map[string]string{"scope": "1a5"}); got != float64(t0.Unix()) {
		t.Errorf("scope_last_success{1a5} = %v, want %v", got, t0.Unix())
	}
	if got := value(t, reg, "rancher_ecr_credentials_writes_total", map[string]string{"registry": hostA, "scope": "namespaces", "result": "updated"}); got != 9 {
		t.Errorf("writes_total{namespaces,updated} = %v, want 9", got)
	}
	if got := value(t, reg, "rancher_ecr_credentials_writes_total", map[string]string{"registry": hostA, "scope": "namespaces", "result": "failed"}); got != 1 {
		t.Errorf("writes_total{namespaces,failed} = %v, want 1", got)
	}
	if got := value(t, reg, "rancher_ecr_credentials_runs_total", map[string]string{"result": "failure"}); got != 1 {
		t.Errorf("runs_total{failure} = %v, want 1", got)
	}
	// A namespace not written yet: the configured scope stays fresh, and
	// pending is counted.
	e.r.AddScope(refresher.Scope{Name: "ns-new", Group: "namespaces", Target: &fakeTarget{}})
	if got := value(t, reg, "rancher_ecr_credentials_scopes", map[string]string{"target": "namespaces", "registry": "", "state": "pending"}); got != 1 {
		t.Errorf("scopes{namespaces,pending} = %v, want 1", got)
	}
	if got := value(t, reg, "rancher_ecr_credentials_credential_fresh", own); got != 1 {
		t.Errorf("fresh{1a5} = %v beside a pending namespace, want 1", got)
	}

	// No run for 13 hours (a stalled loop): every credential has expired.
	e.clock.Add(13 * time.Hour)
	if got := value(t, reg, "rancher_ecr_credentials_credential_fresh", own); got != 0 {
		t.Errorf("fresh{1a5} after expiry = %v, want 0", got)
	}
	if got := scopes("fresh"); got != 0 {
		t.Errorf("scopes{fresh} after expiry = %v, want 0", got)
	}
}

func TestMetrics_ECRErrorsByCode(t *testing.T) {
	t.Parallel()
	src := &fakeSource{region: "eu-west-1", hosts: []string{hostB}, FetchFunc: func(context.Context, int64) refresher.Fetched {
		return refresher.Fetched{Err: codedErr{"ThrottlingException"}}
	}}
	e := newEnv(t, []refresher.Source{src}, scope("a", &fakeTarget{}))
	reg := prometheus.NewRegistry()
	e.r.Metrics = refresher.NewMetrics(reg)
	_ = e.r.RunOnce(t.Context())
	if got := value(t, reg, "rancher_ecr_credentials_ecr_errors_total", map[string]string{"region": "eu-west-1", "code": "ThrottlingException"}); got != 1 {
		t.Errorf("ecr_errors_total{ThrottlingException} = %v, want 1", got)
	}
	src.FetchFunc = func(context.Context, int64) refresher.Fetched {
		return refresher.Fetched{Err: context.DeadlineExceeded}
	}
	_ = e.r.RunOnce(t.Context())
	if got := value(t, reg, "rancher_ecr_credentials_ecr_errors_total", map[string]string{"region": "eu-west-1", "code": "timeout"}); got != 1 {
		t.Errorf("ecr_errors_total{timeout} = %v, want 1", got)
	}
}

// codedErr is a source's error naming its code, as ecrsource's do.
type codedErr struct{ code string }

func (e codedErr) Error() string     { return e.code + " (HTTP 400): Rate exceeded" }
func (e codedErr) ErrorCode() string { return e.code }
func (e codedErr) Temporary() bool   { return true }

// Removing a scope drops its per-scope series (PerScope) at once.
func TestMetrics_RemoveScopeDropsItsSeries(t *testing.T) {
	t.Parallel()
	e, reg := metricsEnv(t, 3, true)
	before := series(t, reg)
	e.r.RemoveScope("ns-1")
	if after := series(t, reg); after >= before {
		t.Errorf("series: %d before removing ns-1, %d after", before, after)
	}
	out := &strings.Builder{}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		fmt.Fprint(out, mf.String())
	}
	if strings.Contains(out.String(), `"ns-1"`) {
		t.Errorf("a series of the removed scope is left:\n%s", out)
	}
}

// A scope removed while its write is in flight leaves no per-scope series
// behind once that write ends.
func TestMetrics_RemoveScopeDuringItsWrite(t *testing.T) {
	t.Parallel()
	src := sourceA()
	g := newGate()
	e := newEnv(t, []refresher.Source{src}, scope("kept", &fakeTarget{}), scope("gone", &fakeTarget{ApplyFunc: g.applyFunc}))
	reg := prometheus.NewRegistry()
	e.r.Metrics = refresher.NewMetrics(reg)
	e.r.Metrics.PerScope = true
	reg.MustRegister(e.r.Collector())
	done := make(chan error, 1)
	go func() { done <- e.r.RunOnce(t.Context()) }()
	testwait.Recv(t, g.entered)
	e.r.RemoveScope("gone")
	close(g.release)
	_ = testwait.Recv(t, done)
	if got := value(t, reg, "rancher_ecr_credentials_writes_total", map[string]string{"scope": "gone"}); got != -1 {
		t.Errorf("writes_total{scope=gone} = %v after the scope was removed, want no series", got)
	}
}

// While refreshes fail, what the README's alerts read stays true: the
// credentials written before are still held (credential_fresh 1, no false
// "a pull would fail now"), token_expiry shows when they expire (so
// "expires soon" can fire), the scope counts as failing; once they have
// expired, fresh is 0 and the expiry stays in the past.
func TestMetrics_WhileRefreshesFail(t *testing.T) {
	t.Parallel()
	src := sourceA()
	broken := false
	tg := &fakeTarget{ApplyFunc: func(context.Context, int) (refresher.Result, error) {
		if broken {
			return "", tempErr("503 Service Unavailable")
		}
		return "", nil
	}}
	e := newEnv(t, []refresher.Source{src}, refresher.Scope{Name: "ns-1", Group: "namespaces", Target: tg})
	reg := prometheus.NewRegistry()
	e.r.Metrics = refresher.NewMetrics(reg)
	reg.MustRegister(e.r.Collector())
	if err := e.r.RunOnce(t.Context()); err != nil {
		t.Fatal(err)
	}
	broken = true
	e.clock.Set(e.r.NextDue()) // the refresh at half life fails
	_ = e.r.RunDue(t.Context())
	pair := map[string]string{"registry": hostA, "scope": "namespaces"}
	expiry := float64(t0.Add(12 * time.Hour).Unix())
	if got := value(t, reg, "rancher_ecr_credentials_token_expiry_timestamp_seconds", pair); got != expiry {
		t.Errorf("token_expiry while refreshes fail = %v, want %v (the credential held)", got, expiry)
	}
	if got := value(t, reg, "rancher_ecr_credentials_credential_fresh", pair); got != 1 {
		t.Errorf("credential_fresh while the credential held is valid = %v, want 1", got)
	}
	if got := value(t, reg, "rancher_ecr_credentials_scopes", map[string]string{"target": "namespaces", "registry": hostA, "state": "failing"}); got != 1 {
		t.Errorf("scopes{failing} = %v, want 1", got)
	}
	if rd := e.r.Readiness(e.clock.Now()); !rd.Ready {
		t.Errorf("not ready while the credential held is valid: %s", rd.Reason)
	}
	e.clock.Set(t0.Add(12*time.Hour + time.Second))
	if got := value(t, reg, "rancher_ecr_credentials_credential_fresh", pair); got != 0 {
		t.Errorf("credential_fresh after expiry = %v, want 0", got)
	}
	if got := value(t, reg, "rancher_ecr_credentials_token_expiry_timestamp_seconds", pair); got != expiry {
		t.Errorf("token_expiry after expiry = %v, want %v", got, expiry)
	}
}
