package kubesecret_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// Updates happen in place (same uid), one request each, and keep what others
// added; a change made between two writes is read again, not clobbered.
func TestWriter_UpdateInPlaceWithoutClobbering(t *testing.T) {
	t.Parallel()
	e := newEnvIn(t, "writer-a")
	w := e.writer(e.Srv.AdminConfig())
	ctx := t.Context()
	apply := func(pw string, want refresher.Result, wantRequests ...string) *corev1.Secret {
		t.Helper()
		got, err := w.Apply(ctx, "writer-a", "pull", managed, auths(pw), nil)
		if err != nil || got != want {
			t.Fatalf("Apply = %q, %v; want %q", got, err, want)
		}
		if got := e.requests(); !slices.Equal(got, wantRequests) {
			t.Errorf("Apply(%s) made requests %q, want %q", pw, got, wantRequests)
		}
		return e.Secret("writer-a", "pull")
	}
	const path = "/api/v1/namespaces/writer-a/secrets"
	first := apply("pw-one", kubesecret.Created, "POST "+path)
	if password(t, first) != "pw-one" {
		t.Fatal("wrong password")
	}
	// A refresh is one request: an update rebuilt from the record, no read.
	second := apply("pw-two", kubesecret.Updated, "PUT "+path+"/pull")
	if second.UID != first.UID || password(t, second) != "pw-two" {
		t.Fatalf("uid %s → %s, password %s", first.UID, second.UID, password(t, second))
	}
	apply("pw-two", kubesecret.Unchanged) // known from the record: no request

	// Someone else changes the Secret: an annotation, a label, another data
	// key, another registry. The recorded resourceVersion is now stale: the
	// update is refused (409), the Secret read again, nothing clobbered.
	other := second.DeepCopy()
	other.Annotations = map[string]string{"team": "a"}
	other.Labels["tier"] = "gold"
	other.Data["extra"] = []byte("x")
	other.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"mirror.example.com":{"username":"u","password":"p","auth":"dTpw"},"` + host + `":{"username":"AWS","password":"pw-two","auth":"x"}}}`)
	if _, err := e.Admin.CoreV1().Secrets("writer-a").Update(ctx, other, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	third := apply("pw-three", kubesecret.Updated, "PUT "+path+"/pull", "GET "+path+"/pull", "PUT "+path+"/pull")
	keptAll := func(s *corev1.Secret) {
		t.Helper()
		if s.UID != first.UID || password(t, s) != "pw-three" {
			t.Fatalf("uid %s, password %s", s.UID, password(t, s))
		}
		if s.Annotations["team"] != "a" || s.Labels["tier"] != "gold" || string(s.Data["extra"]) != "x" || targettest.Auths(t, s)["mirror.example.com"].Password != "p" {
			t.Errorf("a concurrent change was clobbered: %v %v %q %s", s.Annotations, s.Labels, s.Data["extra"], s.Data[corev1.DockerConfigJsonKey])
		}
	}
	keptAll(third)
	// What others hold is in the record: the next refresh keeps it, still one request.
	fourth := apply("pw-four", kubesecret.Updated, "PUT "+path+"/pull")
	if password(t, fourth) != "pw-four" {
		t.Fatal("not refreshed")
	}
	fourth.Data[corev1.DockerConfigJsonKey] = third.Data[corev1.DockerConfigJsonKey]
	keptAll(fourth)

	// The label removed meanwhile: the Secret is no longer ours, never changed.
	fourth.Labels = nil
	handed, err := e.Admin.CoreV1().Secrets("writer-a").Update(ctx, e.freshRV(fourth), metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.Apply(ctx, "writer-a", "pull", managed, auths("pw-five"), nil)
	targettest.WantErr(t, err, "writer-a/pull", "not managed by this daemon")
	if now := e.Secret("writer-a", "pull"); now.ResourceVersion != handed.ResourceVersion {
		t.Error("an unlabelled secret was changed")
	}

	// Deleted by someone: created again, by this writer and by a new one.
	for _, w := range []*kubesecret.Writer{w, e.writer(e.Srv.AdminConfig())} {
		if err := e.Admin.CoreV1().Secrets("writer-a").Delete(ctx, "pull", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if res, err := w.Apply(ctx, "writer-a", "pull", managed, auths("pw-six"), nil); err != nil || res != kubesecret.Created {
			t.Fatalf("Apply after delete = %q, %v", res, err)
		}
	}
}

// freshRV returns s with the server's current resourceVersion.
func (e *env) freshRV(s *corev1.Secret) *corev1.Secret {
	s.ResourceVersion = e.Secret(s.Namespace, s.Name).ResourceVersion
	return s
}

// A write keeps the entries of other hosts, other members of the Docker
// config, and replaces another spelling of its own host ("https://host/", as
// nabsul/k8s-ecr-login-renew writes it); a host no longer written keeps its
// entry as the Secret holds it.
func TestWriter_KeepsWhatIsNotItsOwn(t *testing.T) {
	t.Parallel()
	e := newEnvIn(t, "keep-a")
	w := e.writer(e.Srv.AdminConfig())
	ctx := t.Context()
	e.Create(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "pull", Namespace: "keep-a", Labels: managed},
		Type:       corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"credHelpers":{"gcr.io":"gcloud"},"auths":{` +
			`"https://` + host + `/":{"username":"AWS","password":"old","auth":"QVdTOm9sZA=="},"quay.io":{"auth":"cTpx"}}}`)},
	})
	const other = "444455556666.dkr.ecr.eu-west-1.amazonaws.com"
	two := map[string]kubesecret.Auth{host: {Username: "AWS", Password: "pw-1"}, other: {Username: "AWS", Password: "pw-2"}}
	if res, err := w.Apply(ctx, "keep-a", "pull", managed, two, nil); err != nil || res != kubesecret.Updated {
		t.Fatalf("Apply = %q, %v", res, err)
	}
	s := e.Secret("keep-a", "pull")
	got := targettest.Auths(t, s)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range got {
			if !yield(k) {
				return
			}
		}
	})
	if want := []string{host, other, "quay.io"}; !slices.Equal(keys, want) {
		t.Fatalf("entries %v, want %v", keys, want)
	}
	if !strings.Contains(string(s.Data[corev1.DockerConfigJsonKey]), `"credHelpers":{"gcr.io":"gcloud"}`) {
		t.Errorf("credHelpers lost: %s", s.Data[corev1.DockerConfigJsonKey])
	}
	// other's token is no longer in hand: its entry stays as it is.
	if _, err := w.Apply(ctx, "keep-a", "pull", managed, auths("pw-3"), nil); err != nil {
		t.Fatal(err)
	}
	got = targettest.Auths(t, e.Secret("keep-a", "pull"))
	if got[other].Password != "pw-2" || got[host].Password != "pw-3" || got["quay.io"].Auth != "cTpx" {
		t.Errorf("after a host left: %+v", got)
	}
}

// A refusal names the verb, resource and namespace, and the grant that fixes it.
func TestWriter_Forbidden(t *testing.T) {
	t.Parallel()
	e := newEnvIn(t, "rbac-a")
	e.Grant("rbac-a", "limited", targettest.SecretRule("get"))
	w := e.writer(e.Srv.UserConfig("limited"))
	for name, call := range map[string]func() (refresher.Result, error){
		"Apply": func() (refresher.Result, error) {
			return w.Apply(t.Context(), "rbac-a", "ecr-credentials", managed, auths("pw-rbac"), nil)
		},
		"Check": func() (refresher.Result, error) {
			return w.Check(t.Context(), "rbac-a", "ecr-credentials", managed, auths("pw-rbac"), nil)
		},
	} {
		_, err := call()
		targettest.WantErr(t, err, `secrets "ecr-credentials" is forbidden: cannot create secrets in namespace rbac-a: grant verbs [get create update] on secrets in that namespace`)
		if err != nil && strings.Contains(err.Error(), "pw-rbac") {
			t.Errorf("%s: password in the error", name)
		}
	}
}

func TestWriter_RefusesForeignByDefaultAndByOwnRule(t *testing.T) {
	t.Parallel()
	e := newEnvIn(t, "own-a")
	ctx := t.Context()
	w := e.writer(e.Srv.AdminConfig())
	if _, err := w.Apply(ctx, "own-a", "s", managed, auths("pw-own"), nil); err != nil {
		t.Fatal(err)
	}
	errTest := errors.New("refused by the caller's rule")
	refuse := func(*corev1.Secret) error { return errTest }
	// The record is not enough to refuse: the Secret is read again when the
	// rule might refuse it, which a fresh writer does.
	fresh := e.writer(e.Srv.AdminConfig())
	if _, err := fresh.Apply(ctx, "own-a", "s", managed, auths("pw-own-2"), refuse); !errors.Is(err, errTest) {
		t.Fatalf("own's refusal not returned: %v", err)
	}

	// A Secret of another type, even labelled, cannot become ours.
	e.Create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "opaque", Namespace: "own-a", Labels: managed}, Data: map[string][]byte{"k": []byte("v")}})
	_, err := w.Apply(ctx, "own-a", "opaque", managed, auths("pw-own-3"), nil)
	targettest.WantErr(t, err, "own-a/opaque has type Opaque", "delete it")
}

// A Secret Rancher copied from a project Secret carries the ownership label
// of its source; it is never written, whatever the caller's rule says, and
// neither is a dry run of it.
func TestWriter_RancherCopyNeverWritten(t *testing.T) {
	t.Parallel()
	e := newEnvIn(t, "copy-a")
	ctx := t.Context()
	cp := e.Create(&corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "ecr-credentials", Namespace: "copy-a",
			Labels:      map[string]string{kubesecret.ManagedByLabel: kubesecret.ManagedBy, "management.cattle.io/project-scoped-secret": "p-abcde"},
			Annotations: map[string]string{kubesecret.RancherCopyAnnotation: "true"}},
		Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"` + host + `":{"username":"AWS","password":"rancher's","auth":"x"}}}`)},
	})
	w := e.writer(e.Srv.AdminConfig())
	accept := func(*corev1.Secret) error { return nil }
	for name, call := range map[string]func() (refresher.Result, error){
		"Apply": func() (refresher.Result, error) {
			return w.Apply(ctx, "copy-a", "ecr-credentials", managed, auths("pw-copy"), accept)
		},
		"Check": func() (refresher.Result, error) {
			return w.Check(ctx, "copy-a", "ecr-credentials", managed, auths("pw-copy"), accept)
		},
	} {
		_, err := call()
		targettest.WantErr(t, err, "copy-a/ecr-credentials is a copy Rancher made", kubesecret.RancherCopyAnnotation)
		if name == "Apply" && !strings.Contains(err.Error(), "never written") {
			t.Errorf("error %q does not say it is never written", err)
		}
	}
	if now := e.Secret("copy-a", "ecr-credentials"); now.ResourceVersion != cp.ResourceVersion {
		t.Error("Rancher's copy was changed")
	}
	if w.Known("copy-a", "ecr-credentials") {
		t.Error("the writer keeps a record of a Secret it may not write")
	}
}

// Check meets what Apply meets (the server's dry run: ownership, RBAC,
// admission) and stores nothing, neither on the server nor in the writer.
func TestWriter_CheckIsTheServersDryRun(t *testing.T) {
	t.Parallel()
	e := newEnvIn(t, "dry-a")
	ctx := t.Context()
	w := e.writer(e.Srv.AdminConfig())
	check := func(pw string, want refresher.Result) {
		t.Helper()
		if got, err := w.Check(ctx, "dry-a", "pull", managed, auths(pw), nil); err != nil || got != want {
			t.Fatalf("Check(%s) = %q, %v; want %q", pw, got, err, want)
		}
	}
	check("pw-1", kubesecret.Created)
	if _, err := e.Admin.CoreV1().Secrets("dry-a").Get(ctx, "pull", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a dry run created the secret: %v", err)
	}
	if w.Known("dry-a", "pull") {
		t.Fatal("a dry run left a record")
	}
	for _, r := range e.requests() {
		if !strings.HasPrefix(r, "POST ") {
			t.Errorf("unexpected request %s", r)
		}
	}
	if _, err := w.Apply(ctx, "dry-a", "pull", managed, auths("pw-1"), nil); err != nil {
		t.Fatal(err)
	}
	before := e.Secret("dry-a", "pull")
	check("pw-2", kubesecret.Updated)
	check("pw-1", kubesecret.Unchanged)
	if after := e.Secret("dry-a", "pull"); after.ResourceVersion != before.ResourceVersion || password(t, after) != "pw-1" {
		t.Error("a dry run changed the secret")
	}
	// Updated by Apply after a dry run: the dry run's answer was not recorded.
	if res, err := w.Apply(ctx, "dry-a", "pull", managed, auths("pw-2"), nil); err != nil || res != kubesecret.Updated {
		t.Fatalf("Apply after Check = %q, %v", res, err)
	}

	// A foreign Secret: the dry run fails as the real write does.
	e.Create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: "dry-a"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}})
	_, err := w.Check(ctx, "dry-a", "theirs", managed, auths("pw-3"), nil)
	targettest.WantErr(t, err, "dry-a/theirs exists and is not managed by this daemon")
}
