package kubesecret_test

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/plantest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// fieldWriter returns a FieldWriter over cfg whose requests e counts, and
// whose Updates run before first (once, when set).
func (e *env) fieldWriter(cfg *rest.Config, before func()) *kubesecret.FieldWriter {
	c := e.core(cfg)
	var once atomic.Bool
	return kubesecret.NewFieldWriter(func(ns string) kubesecret.SecretsAPI {
		return hookedSecrets{SecretsAPI: c.Secrets(ns), before: func() {
			if before != nil && once.CompareAndSwap(false, true) {
				before()
			}
		}}
	})
}

type hookedSecrets struct {
	kubesecret.SecretsAPI
	before func()
}

func (h hookedSecrets) Update(ctx context.Context, s *corev1.Secret, o metav1.UpdateOptions) (*corev1.Secret, error) {
	h.before()
	return h.SecretsAPI.Update(ctx, s, o)
}

// consumerSecret is a Secret someone else owns, with keys, labels and
// annotations of its own.
func consumerSecret(ns, name string, typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
	d := map[string][]byte{"keep-me": []byte("not ours\n")}
	maps.Copy(d, data)
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns,
			Labels:      map[string]string{"app": "argocd", "rancher-ecr-credentials/host": host},
			Annotations: map[string]string{"owner": "team-a", "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
		Type: typ, Data: d,
	}
}

// sameButFields fails t unless after is before with only the data keys
// fields changed: same uid, type, labels, annotations and other keys.
func sameButFields(t *testing.T, before, after *corev1.Secret, fields ...string) {
	t.Helper()
	if after.UID != before.UID || after.Type != before.Type {
		t.Errorf("uid %s type %s, want %s %s: not updated in place", after.UID, after.Type, before.UID, before.Type)
	}
	if d := cmp.Diff(before.Labels, after.Labels); d != "" {
		t.Errorf("labels changed (-before +after):\n%s", d)
	}
	if d := cmp.Diff(before.Annotations, after.Annotations); d != "" {
		t.Errorf("annotations changed (-before +after):\n%s", d)
	}
	b, a := maps.Clone(before.Data), maps.Clone(after.Data)
	for _, f := range fields {
		delete(b, f)
		delete(a, f)
	}
	if !maps.EqualFunc(a, b, func(x, y []byte) bool { return string(x) == string(y) }) {
		t.Errorf("other keys changed: before %q, after %q", b, a)
	}
}

// A basic-auth Secret gets username and password in place; everything else
// stays byte for byte; a second write with the same values is unchanged and
// makes no update; the record follows the resourceVersion.
func TestFieldWriter_BasicAuthInPlace(t *testing.T) {
	t.Parallel()
	e := newEnvIn(t, "fields-basic")
	before := e.Create(consumerSecret("fields-basic", "helm", corev1.SecretTypeBasicAuth, map[string][]byte{"username": []byte("old"), "password": []byte("old-pw")}))
	w := e.fieldWriter(e.Srv.AdminConfig(), nil)
	ctx := t.Context()
	edit := kubesecret.BasicAuth(kubesecret.Auth{Username: "AWS", Password: "fresh-pw"})
	if res, err := w.Apply(ctx, "fields-basic", "helm", edit); err != nil || res != kubesecret.Updated {
		t.Fatalf("Apply = %s, %v", res, err)
	}
	after := e.Secret("fields-basic", "helm")
	if string(after.Data["username"]) != "AWS" || string(after.Data["password"]) != "fresh-pw" {
		t.Errorf("username/password = %q/%q", after.Data["username"], after.Data["password"])
	}
	sameButFields(t, before, after, "username", "password")
	if !w.Current("fields-basic", "helm", after.ResourceVersion) || w.Current("fields-basic", "helm", before.ResourceVersion) {
		t.Error("Current does not follow the resourceVersion written")
	}
	e.requests()
	if res, err := w.Apply(ctx, "fields-basic", "helm", edit); err != nil || res != kubesecret.Unchanged {
		t.Fatalf("second Apply = %s, %v", res, err)
	}
	if got := e.requests(); len(got) != 1 || !strings.HasPrefix(got[0], "GET ") {
		t.Errorf("an unchanged write made %q, want one GET", got)
	}
}

// A dockerconfigjson Secret and an Opaque config.json get the host's entry,
// other entries byte for byte.
func TestFieldWriter_DockerConfigInPlace(t *testing.T) {
	t.Parallel()
	e := newEnvIn(t, "fields-docker")
	w := e.fieldWriter(e.Srv.AdminConfig(), nil)
	for _, c := range []struct {
		name, key string
		typ       corev1.SecretType
	}{{"pull", corev1.DockerConfigJsonKey, corev1.SecretTypeDockerConfigJson}, {"kaniko", "config.json", corev1.SecretTypeOpaque}} {
		before := e.Create(consumerSecret("fields-docker", c.name, c.typ, map[string][]byte{c.key: []byte(other)}))
		if res, err := w.Apply(t.Context(), "fields-docker", c.name, kubesecret.DockerConfig(c.key, host, kubesecret.Auth{Username: "AWS", Password: "fresh"})); err != nil || res != kubesecret.Updated {
			t.Fatalf("%s: Apply = %s, %v", c.name, res, err)
		}
		after := e.Secret("fields-docker", c.name)
		sameButFields(t, before, after, c.key)
		got := string(after.Data[c.key])
		for _, kept := range []string{`"registry.example.com": {
			"auth": "dXNlcjpwe30iYQ==",
			"email": "ops@example.com \"}\""
		}`, `"credHelpers": {
		"gcr.io": "gcloud"
	}`} {
			if !strings.Contains(got, kept) {
				t.Errorf("%s: %s no longer holds %s byte for byte:\n%s", c.name, c.key, kept, got)
			}
		}
		if !strings.Contains(got, `"https://`+host+`/v1/": {"username":"AWS","password":"fresh","auth":"QVdTOmZyZXNo"}`) {
			t.Errorf("%s: the entry is not set under its own spelling:\n%s", c.name, got)
		}
	}
}

// A change by someone else between the read and the update is a 409: the
// Secret is read again and their change kept.
func TestFieldWriter_ConflictReadsAgain(t *testing.T) {
	t.Parallel()
	e := newEnvIn(t, "fields-conflict")
	e.Create(consumerSecret("fields-conflict", "repo", corev1.SecretTypeOpaque, nil))
	w := e.fieldWriter(e.Srv.AdminConfig(), func() {
		s := e.Secret("fields-conflict", "repo")
		s.Data["theirs"] = []byte("written meanwhile")
		if _, err := e.Admin.CoreV1().Secrets("fields-conflict").Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
			t.Error(err)
		}
	})
	e.requests()
	if res, err := w.Apply(t.Context(), "fields-conflict", "repo", kubesecret.BasicAuth(kubesecret.Auth{Username: "AWS", Password: "pw"})); err != nil || res != kubesecret.Updated {
		t.Fatalf("Apply = %s, %v", res, err)
	}
	s := e.Secret("fields-conflict", "repo")
	if string(s.Data["theirs"]) != "written meanwhile" || string(s.Data["password"]) != "pw" || string(s.Data["keep-me"]) != "not ours\n" {
		t.Errorf("after the conflict: %q", s.Data)
	}
	if got := strings.Join(e.requests(), ","); strings.Count(got, "GET ") != 2 || strings.Count(got, "PUT ") != 2 {
		t.Errorf("requests %s: want read, conflict, read again, update", got)
	}
}

// What is not the writer's to write is refused, named, and left as it is.
func TestFieldWriter_Refusals(t *testing.T) {
	t.Parallel()
	e := newEnvIn(t, "fields-refuse")
	w := e.fieldWriter(e.Srv.AdminConfig(), nil)
	ctx := t.Context()
	basic := kubesecret.BasicAuth(kubesecret.Auth{Username: "AWS", Password: "pw-never-shown"})

	_, err := w.Apply(ctx, "fields-refuse", "missing", basic)
	if !errors.Is(err, kubesecret.ErrNoSecret) || !plantest.Permanent(err) {
		t.Errorf("missing Secret: %v (permanent %v), want ErrNoSecret, permanent", err, plantest.Permanent(err))
	}
	cp := consumerSecret("fields-refuse", "copy", corev1.SecretTypeOpaque, nil)
	cp.Annotations[kubesecret.RancherCopyAnnotation] = "true"
	before := e.Create(cp)
	if _, err := w.Apply(ctx, "fields-refuse", "copy", basic); !errors.Is(err, kubesecret.ErrRancherCopy) || !plantest.Permanent(err) {
		t.Errorf("Rancher copy: %v", err)
	}
	if after := e.Secret("fields-refuse", "copy"); after.ResourceVersion != before.ResourceVersion {
		t.Error("a Rancher copy was written")
	}
	bad := e.Create(consumerSecret("fields-refuse", "garbage", corev1.SecretTypeOpaque, map[string][]byte{"config.json": []byte("{not json")}))
	_, err = w.Apply(ctx, "fields-refuse", "garbage", kubesecret.DockerConfig("config.json", host, kubesecret.Auth{Username: "AWS", Password: "pw-never-shown"}))
	targettest.WantErr(t, err, "secret fields-refuse/garbage: key config.json is not valid JSON, not a Docker config; it is never replaced")
	if after := e.Secret("fields-refuse", "garbage"); after.ResourceVersion != bad.ResourceVersion {
		t.Error("a config.json that is no Docker config was replaced")
	}
	checked := basic
	checked.Check = func(s *corev1.Secret) error { return errors.New("checked: " + s.Name) }
	if _, err := w.Apply(ctx, "fields-refuse", "garbage", checked); err == nil || err.Error() != "checked: garbage" {
		t.Errorf("Check's refusal: %v", err)
	}
	e.Grant("fields-refuse", "fields-reader", targettest.SecretRule("get"))
	_, err = e.fieldWriter(e.Srv.UserConfig("fields-reader"), nil).Apply(ctx, "fields-refuse", "garbage", basic)
	targettest.WantErr(t, err, `secrets "garbage" is forbidden: cannot update secrets in namespace fields-refuse`)
	if err != nil && strings.Contains(err.Error(), "pw-never-shown") {
		t.Error("the password is in the error")
	}
}

// Check is the server's dry run: it reads, it meets the same refusals, and
// stores and remembers nothing.
func TestFieldWriter_CheckStoresNothing(t *testing.T) {
	t.Parallel()
	e := newEnvIn(t, "fields-dry")
	before := e.Create(consumerSecret("fields-dry", "repo", corev1.SecretTypeOpaque, nil))
	w := e.fieldWriter(e.Srv.AdminConfig(), nil)
	res, err := w.Check(t.Context(), "fields-dry", "repo", kubesecret.BasicAuth(kubesecret.Auth{Username: "AWS", Password: "pw"}))
	if err != nil || res != refresher.ResultUpdated {
		t.Fatalf("Check = %s, %v", res, err)
	}
	if after := e.Secret("fields-dry", "repo"); after.ResourceVersion != before.ResourceVersion || w.Known("fields-dry", "repo") {
		t.Error("a dry run stored or remembered something")
	}
}
