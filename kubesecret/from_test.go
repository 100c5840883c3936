package kubesecret_test

import (
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// A writer that has never written a Secret, given it as a list returned it,
// refreshes it with one update (no create ending in 409, no second read),
// keeps what others put in it, and still never clobbers a change made after
// the list. The dry run starts from it too and stores nothing.
func TestWriter_ApplyFromListed(t *testing.T) {
	t.Parallel()
	e := newEnvIn(t, "from-a")
	ctx := t.Context()
	const path = "/api/v1/namespaces/from-a/secrets"
	if _, err := e.writer(e.Srv.AdminConfig()).Apply(ctx, "from-a", "pull", managed, auths("pw-one"), nil); err != nil {
		t.Fatal(err)
	}
	// Someone adds an annotation and another registry: a new writer must keep both.
	s := e.Secret("from-a", "pull")
	s.Annotations = map[string]string{"team": "a"}
	s.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"mirror.example.com":{"username":"u","password":"p","auth":"dTpw"},"` + host + `":{"username":"AWS","password":"pw-one","auth":"x"}}}`)
	if _, err := e.Admin.CoreV1().Secrets("from-a").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	listed := func() *corev1.Secret {
		t.Helper()
		list, err := e.Admin.CoreV1().Secrets("from-a").List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 1 {
			t.Fatalf("list: %v, %d items", err, len(list.Items))
		}
		return &list.Items[0]
	}
	w := e.writer(e.Srv.AdminConfig()) // a new process: no record
	e.requests()                       // the first writer's
	apply := func(from func(*refresher.Result) error, want refresher.Result, wantRequests ...string) {
		t.Helper()
		var got refresher.Result
		if err := from(&got); err != nil || got != want {
			t.Fatalf("= %q, %v; want %q", got, err, want)
		}
		if got := e.requests(); !slices.Equal(got, wantRequests) {
			t.Errorf("made requests %q, want %q", got, wantRequests)
		}
	}
	applyFrom := func(read *corev1.Secret, pw string, dry bool) func(*refresher.Result) error {
		return func(res *refresher.Result) (err error) {
			if dry {
				*res, err = w.CheckFrom(ctx, "from-a", "pull", read, managed, auths(pw), nil, nil)
			} else {
				*res, err = w.ApplyFrom(ctx, "from-a", "pull", read, managed, auths(pw), nil, nil)
			}
			return err
		}
	}

	before := listed()
	apply(applyFrom(before, "pw-two", true), kubesecret.Updated, "PUT "+path+"/pull")
	if now := e.Secret("from-a", "pull"); now.ResourceVersion != before.ResourceVersion {
		t.Fatal("a dry run changed the Secret")
	}
	apply(applyFrom(before, "pw-two", false), kubesecret.Updated, "PUT "+path+"/pull")
	kept := func(pw string) {
		t.Helper()
		now := e.Secret("from-a", "pull")
		if now.UID != before.UID || password(t, now) != pw || now.Annotations["team"] != "a" || targettest.Auths(t, now)["mirror.example.com"].Password != "p" {
			t.Errorf("uid %s → %s, password %s, annotations %v, mirror entry %+v", before.UID, now.UID, password(t, now), now.Annotations, targettest.Auths(t, now)["mirror.example.com"])
		}
	}
	kept("pw-two")
	apply(applyFrom(listed(), "pw-two", false), kubesecret.Unchanged) // nothing to change: no request

	// Changed by someone between the list and the write: 409, read again, nothing clobbered.
	stale := listed()
	s = e.Secret("from-a", "pull")
	s.Labels["tier"] = "gold"
	if _, err := e.Admin.CoreV1().Secrets("from-a").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	apply(applyFrom(stale, "pw-three", false), kubesecret.Updated, "PUT "+path+"/pull", "GET "+path+"/pull", "PUT "+path+"/pull")
	kept("pw-three")
	if e.Secret("from-a", "pull").Labels["tier"] != "gold" {
		t.Error("a label added after the list was clobbered")
	}

	// Not given a Secret: Apply as ever (create first). Given one the rule refuses: no request.
	errTest := errors.New("refused by the caller's rule")
	if _, err := w.ApplyFrom(ctx, "from-a", "pull", listed(), managed, auths("pw-four"), nil, func(*corev1.Secret) error { return errTest }); !errors.Is(err, errTest) {
		t.Fatalf("own's refusal not returned: %v", err)
	}
	if got := e.requests(); len(got) != 0 {
		t.Errorf("a refused Secret cost requests %q", got)
	}
	if w.Known("from-a", "pull") {
		t.Error("the writer keeps a record of a Secret it may not write")
	}
	apply(func(res *refresher.Result) (err error) {
		*res, err = w.ApplyFrom(ctx, "from-a", "new", nil, managed, auths("pw-five"), nil, nil)
		return err
	}, kubesecret.Created, "POST "+path)
}
