package kubesecret_test

import (
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
)

// Replace keeps, of the hosts drop names, exactly those it writes: a
// namespace whose AWS identity changed from one account's registry to
// another's holds no entry of the first. Other hosts' entries stay; with
// nothing to write it only takes entries back, creates nothing, and leaves a
// Secret that is not its own as it is; CheckReplace stores nothing.
func TestWriter_Replace(t *testing.T) {
	t.Parallel()
	e := newEnvIn(t, "replace-a")
	w := e.writer(e.Srv.AdminConfig())
	ctx := t.Context()
	const other = "444455556666.dkr.ecr.us-east-1.amazonaws.com"
	ours := func(h string) bool { return h == host || h == other }
	hosts := func() []string {
		return slices.Sorted(maps.Keys(targettest.Auths(t, e.Secret("replace-a", "pull"))))
	}
	// Nothing there, nothing to write: nothing is created.
	if res, err := w.Replace(ctx, "replace-a", "pull", managed, nil, ours, nil); err != nil || res != kubesecret.Unchanged {
		t.Fatalf("Replace(nothing) on no Secret = %q, %v", res, err)
	}
	if _, err := e.Admin.CoreV1().Secrets("replace-a").Get(ctx, "pull", metav1.GetOptions{}); err == nil {
		t.Fatal("a Secret was created with nothing to hold")
	}
	// The daemon's own identity's registry, and a hand-kept mirror.
	if _, err := w.Apply(ctx, "replace-a", "pull", managed, auths("own-pw"), nil); err != nil {
		t.Fatal(err)
	}
	s := e.Secret("replace-a", "pull")
	s.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"mirror.example.com":{"username":"u","password":"p","auth":"dTpw"},"https://` + host + `/":{"username":"AWS","password":"own-pw","auth":"x"}}}`)
	if _, err := e.Admin.CoreV1().Secrets("replace-a").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another identity, another account's registry: the first one's entry
	// (however spelled) goes, the mirror stays.
	tenant := map[string]kubesecret.Auth{other: {Username: "AWS", Password: "tenant-pw"}}
	if res, err := w.CheckReplace(ctx, "replace-a", "pull", managed, tenant, ours, nil); err != nil || res != kubesecret.Updated {
		t.Fatalf("CheckReplace = %q, %v", res, err)
	}
	if got := hosts(); !slices.Equal(got, []string{"https://" + host + "/", "mirror.example.com"}) {
		t.Fatalf("CheckReplace changed the Secret: %v", got)
	}
	if res, err := w.Replace(ctx, "replace-a", "pull", managed, tenant, ours, nil); err != nil || res != kubesecret.Updated {
		t.Fatalf("Replace = %q, %v", res, err)
	}
	if got := hosts(); !slices.Equal(got, []string{other, "mirror.example.com"}) {
		t.Fatalf("after Replace the Secret holds %v, want the tenant's registry and the mirror", got)
	}
	if targettest.Auths(t, e.Secret("replace-a", "pull"))[other].Password != "tenant-pw" {
		t.Error("the tenant's entry is not the tenant's")
	}
	// Refused: every entry of ours taken back. The set of hosts written
	// changed, so the Secret is read again first, as for Apply.
	e.requests()
	if res, err := w.Replace(ctx, "replace-a", "pull", managed, nil, ours, nil); err != nil || res != kubesecret.Updated {
		t.Fatalf("Replace(nothing) = %q, %v", res, err)
	}
	if got := hosts(); !slices.Equal(got, []string{"mirror.example.com"}) {
		t.Fatalf("after taking back the Secret holds %v, want the mirror only", got)
	}
	if got := e.requests(); len(got) != 2 || got[0] != "GET /api/v1/namespaces/replace-a/secrets/pull" {
		t.Errorf("taking back made requests %q, want a read and an update", got)
	}
	if res, err := w.Replace(ctx, "replace-a", "pull", managed, nil, ours, nil); err != nil || res != kubesecret.Unchanged {
		t.Errorf("taking back again = %q, %v, want unchanged", res, err)
	}
	// A Secret that is not this daemon's: left as it is, no error.
	foreign := e.Create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: "replace-a"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"` + host + `":{"username":"AWS","password":"theirs","auth":"x"}}}`)}})
	if res, err := w.Replace(ctx, "replace-a", "theirs", managed, nil, ours, nil); err != nil || res != kubesecret.Unchanged {
		t.Errorf("taking back from a foreign Secret = %q, %v", res, err)
	}
	if e.Secret("replace-a", "theirs").ResourceVersion != foreign.ResourceVersion {
		t.Error("a foreign Secret was changed")
	}
}
