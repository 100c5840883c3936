package leader_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/leader"
)

var server kubetest.Shared

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperMain())
	}
	os.Exit(server.Run(m))
}

// times are short, so takeovers take seconds; their proportions are the
// defaults'.
var times = leader.Times{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 250 * time.Millisecond}

const replicaGroup = "leader-test-replicas"

// setup creates namespace ns and grants replicaGroup what a replica needs
// there: the Lease, and the marker Secret each leader writes.
func setup(t *testing.T, ns string) *kubetest.Server {
	t.Helper()
	srv := server.Start(t)
	admin := kubetest.Clientset(t, srv.AdminConfig())
	ctx := t.Context()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "replica"}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: leader.Verbs},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create", "update"}},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "replica"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "replica"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "Group", Name: replicaGroup}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return srv
}

func newClient(t testing.TB, cfg *rest.Config) *kubeapi.Client {
	t.Helper()
	c, err := kubeapi.New(kubeapi.Prepare(cfg, kubeapi.Options{UserAgent: "leader-test"}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeMarkers is a leader's work: until ctx ends, it reads the Secret
// "marker", adds one to its counter and writes it back with the
// resourceVersion read, naming itself. Two writers at once would show as
// 409 Conflicts in the API server's audit log.
func writeMarkers(ctx context.Context, c *kubeapi.Client, ns, id string) {
	secrets := c.Secrets(ns)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := secrets.Get(ctx, "marker", metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			_, _ = secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "marker"},
				StringData: map[string]string{"holder": id, "counter": "1"}}, metav1.CreateOptions{})
		case err == nil:
			n, _ := strconv.Atoi(string(s.Data["counter"]))
			s.Data["counter"], s.Data["holder"] = []byte(strconv.Itoa(n+1)), []byte(id)
			_, _ = secrets.Update(ctx, s, metav1.UpdateOptions{})
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// write is one request the API server recorded.
type write struct {
	user string
	at   time.Time
	code int
}

// writes returns the successful writes of resource/name in ns, in the order
// the server received them, failing t on any 409 Conflict.
func writes(t *testing.T, srv *kubetest.Server, ns, resource, name string) []write {
	t.Helper()
	events, err := srv.AuditEvents()
	if err != nil {
		t.Fatal(err)
	}
	var out []write
	for _, ev := range events {
		r := ev.ObjectRef
		if r == nil || r.Namespace != ns || r.Resource != resource || (r.Name != name && r.Name != "") || ev.ResponseStatus == nil {
			continue
		}
		if ev.Verb != "create" && ev.Verb != "update" {
			continue
		}
		if ev.ResponseStatus.Code == http.StatusConflict && resource == "secrets" {
			t.Errorf("%s's write of the marker at %s was a 409 Conflict: two writers", ev.User.Username, ev.RequestReceived)
		}
		if ev.ResponseStatus.Code < 300 {
			out = append(out, write{user: ev.User.Username, at: ev.RequestReceived, code: ev.ResponseStatus.Code})
		}
	}
	slices.SortStableFunc(out, func(a, b write) int { return a.at.Compare(b.at) })
	return out
}

// checkTurns fails t unless the marker's writers took turns: each user's
// writes in one run, first to last in the order of users.
func checkTurns(t *testing.T, ws []write, users ...string) {
	t.Helper()
	var order []string
	for _, w := range ws {
		if len(order) == 0 || order[len(order)-1] != w.user {
			order = append(order, w.user)
		}
	}
	if !slices.Equal(order, users) {
		t.Errorf("marker writers in server order: %v, want %v each in one run", order, users)
	}
}

// lastBy returns the time of user's last write in ws, and firstBy the first.
func lastBy(ws []write, user string) (at time.Time) {
	for _, w := range ws {
		if w.user == user {
			at = w.at
		}
	}
	return at
}

func firstBy(ws []write, user string) time.Time {
	for _, w := range ws {
		if w.user == user {
			return w.at
		}
	}
	return time.Time{}
}

// hangLeases makes a replica's Lease calls hang until their context ends
// while cut is set; everything else it sends goes through.
type hangLeases struct {
	rt  http.RoundTripper
	cut *atomic.Bool
}

func (h hangLeases) RoundTrip(req *http.Request) (*http.Response, error) {
	if h.cut.Load() && strings.Contains(req.URL.Path, "/leases") {
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	return h.rt.RoundTrip(req)
}

// Two replicas, one Lease: the follower sees a fresh leader; when the
// leader can still write but no longer renew, it stops writing before the
// follower takes over, which the API server's own audit log shows.
func TestElector_NoTwoWritersOnRealServer(t *testing.T) {
	t.Parallel()
	const ns = "leader-no-two"
	srv := setup(t, ns)
	type rep struct {
		el   *leader.Elector
		lead chan struct{}
		done chan error
		cut  atomic.Bool
	}
	start := func(name string) *rep {
		r := &rep{lead: make(chan struct{}, 1), done: make(chan error, 1)}
		cfg := srv.UserConfig(name, replicaGroup)
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return hangLeases{rt, &r.cut} })
		c := newClient(t, cfg)
		r.el = leader.New(c, ns, name, times)
		log := logrus.New()
		log.SetOutput(t.Output())
		r.el.Logger = log.WithField("replica", name)
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			r.done <- r.el.Run(ctx, func(ctx context.Context) { r.lead <- struct{}{}; writeMarkers(ctx, c, ns, name) })
		}()
		t.Cleanup(func() { cancel(); testwait.Recv(t, r.done) })
		return r
	}
	a := start("replica-a")
	testwait.Recv(t, a.lead)
	b := start("replica-b")
	testwait.For(t, 10*time.Second, "replica-b to see a fresh leader", func() bool {
		role, holder, fresh := b.el.Role(time.Now())
		return role == "follower" && holder == "replica-a" && fresh
	})
	testwait.For(t, 10*time.Second, "replica-a to write markers", func() bool { return len(writes(t, srv, ns, "secrets", "marker")) >= 3 })

	a.cut.Store(true)
	if err := testwait.Recv(t, a.done); !errors.Is(err, leader.ErrLeaseLost) {
		t.Fatalf("replica-a's Run = %v, want ErrLeaseLost", err)
	}
	a.done <- nil // for the cleanup
	testwait.Recv(t, b.lead)
	testwait.For(t, 10*time.Second, "replica-b to write markers", func() bool {
		return !firstBy(writes(t, srv, ns, "secrets", "marker"), "replica-b").IsZero()
	})

	markers := writes(t, srv, ns, "secrets", "marker")
	checkTurns(t, markers, "replica-a", "replica-b")
	leases := writes(t, srv, ns, "leases", leader.DefaultLeaseName)
	aLastRenew, bTook := lastBy(leases, "replica-a"), firstBy(leases, "replica-b")
	aLastMarker := lastBy(markers, "replica-a")
	t.Logf("replica-a: last renewal %s, last marker +%s; replica-b took the lease +%s",
		aLastRenew.Format(time.StampMilli), aLastMarker.Sub(aLastRenew), bTook.Sub(aLastRenew))
	if !aLastMarker.Before(bTook) {
		t.Errorf("replica-a wrote at %s, after replica-b took the lease at %s", aLastMarker, bTook)
	}
	if gap := bTook.Sub(aLastRenew); gap < times.LeaseDuration {
		t.Errorf("replica-b took the lease %s after replica-a's last renewal, less than the lease duration %s", gap, times.LeaseDuration)
	}
	if gap := aLastMarker.Sub(aLastRenew); gap > times.RenewDeadline+time.Second {
		t.Errorf("replica-a wrote %s after its last renewal, past the renew deadline %s", gap, times.RenewDeadline)
	}
}

// A replica without the Lease grants is told which grant to add, by the
// elector's LastError and log, in kubeapi's words.
func TestElector_RefusalNamesTheGrant(t *testing.T) {
	t.Parallel()
	const ns = "leader-rbac"
	srv := setup(t, ns)
	el := leader.New(newClient(t, srv.UserConfig("ungranted")), ns, "ungranted", times)
	log := logrus.New()
	out := &logbuf.Buffer{}
	log.SetOutput(out)
	el.Logger = log
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- el.Run(ctx, func(context.Context) { t.Error("an ungranted replica leads") }) }()
	testwait.For(t, 10*time.Second, "a refusal", func() bool { return el.LastError() != nil })
	cancel()
	if err := testwait.Recv(t, done); err != nil {
		t.Errorf("Run = %v", err)
	}
	err := el.LastError()
	var e *kubeapi.Error
	if !errors.As(err, &e) || !apierrors.IsForbidden(err) {
		t.Fatalf("LastError = %v, want a Forbidden *kubeapi.Error", err)
	}
	want := "cannot get leases.coordination.k8s.io in namespace leader-rbac: grant verbs [get create update] on leases.coordination.k8s.io in that namespace"
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `leases.coordination.k8s.io "rancher-ecr-credentials" is forbidden`) {
		t.Errorf("LastError = %v\nwant it to contain %q", err, want)
	}
	if role, holder, fresh := el.Role(time.Now()); role != "follower" || holder != "" || fresh {
		t.Errorf("Role = %s %q %v", role, holder, fresh)
	}
	if !strings.Contains(out.String(), "grant verbs [get create update] on leases.coordination.k8s.io") {
		t.Errorf("log lacks the grant:\n%s", out.String())
	}
}
