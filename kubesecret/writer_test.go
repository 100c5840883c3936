package kubesecret_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

var managed = map[string]string{kubesecret.ManagedByLabel: kubesecret.ManagedBy}

func auths(pw string) map[string]kubesecret.Auth {
	return map[string]kubesecret.Auth{host: {Username: "AWS", Password: pw}}
}

// Updates happen in place (same uid) and keep what others added; a change
// made between two writes is read again, not clobbered.
func TestWriter_UpdateInPlaceWithoutClobbering(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"writer-a": nil})
	w := kubesecret.NewWriter(e.admin.CoreV1())
	ctx := t.Context()
	apply := func(pw string, want refresher.Result) *corev1.Secret {
		t.Helper()
		got, err := w.Apply(ctx, "writer-a", "pull", managed, auths(pw), nil)
		if err != nil || got != want {
			t.Fatalf("Apply = %q, %v; want %q", got, err, want)
		}
		s, _ := e.secret("writer-a", "pull")
		return s
	}
	first := apply("pw-one", kubesecret.Created)
	if password(t, first) != "pw-one" {
		t.Fatal("wrong password")
	}
	second := apply("pw-two", kubesecret.Updated)
	if second.UID != first.UID || password(t, second) != "pw-two" {
		t.Fatalf("uid %s → %s, password %s", first.UID, second.UID, password(t, second))
	}
	apply("pw-two", kubesecret.Unchanged)

	// Someone else changes the Secret: an annotation, another data key,
	// another registry. The writer's remembered resourceVersion is now stale.
	other := second.DeepCopy()
	other.Annotations = map[string]string{"team": "a"}
	other.Data["extra"] = []byte("x")
	other.Data[corev1.DockerConfigJsonKey] = []byte(`{"auths":{"mirror.example.com":{"username":"u","password":"p","auth":"dTpw"},"` + host + `":{"username":"AWS","password":"pw-two","auth":"x"}}}`)
	if _, err := e.admin.CoreV1().Secrets("writer-a").Update(ctx, other, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	third := apply("pw-three", kubesecret.Updated)
	if third.UID != first.UID || password(t, third) != "pw-three" {
		t.Fatalf("uid %s, password %s", third.UID, password(t, third))
	}
	if third.Annotations["team"] != "a" || string(third.Data["extra"]) != "x" || !strings.Contains(string(third.Data[corev1.DockerConfigJsonKey]), "mirror.example.com") {
		t.Errorf("a concurrent change was clobbered: %v %v %s", third.Annotations, third.Data["extra"], third.Data[corev1.DockerConfigJsonKey])
	}

	// The label removed meanwhile: the Secret is no longer ours, never changed.
	third.Labels = nil
	handed, err := e.admin.CoreV1().Secrets("writer-a").Update(ctx, third, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Apply(ctx, "writer-a", "pull", managed, auths("pw-four"), nil); err == nil || !strings.Contains(err.Error(), "not managed by this daemon") {
		t.Fatalf("Apply over an unlabelled secret: %v", err)
	}
	if now, _ := e.secret("writer-a", "pull"); now.ResourceVersion != handed.ResourceVersion {
		t.Error("an unlabelled secret was changed")
	}

	// Deleted by someone: created again.
	if err := e.admin.CoreV1().Secrets("writer-a").Delete(ctx, "pull", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	w2 := kubesecret.NewWriter(e.admin.CoreV1())
	apply2, err := w2.Apply(ctx, "writer-a", "pull", managed, auths("pw-five"), nil)
	if err != nil || apply2 != kubesecret.Created {
		t.Fatalf("Apply after delete = %q, %v", apply2, err)
	}
}

// A refusal names the verb, resource and namespace, and the grant that fixes it.
func TestWriter_Forbidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"rbac-a": nil})
	ctx := t.Context()
	_, err := e.admin.RbacV1().Roles("rbac-a").Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "read-secrets"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.RbacV1().RoleBindings("rbac-a").Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "read-secrets"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "read-secrets"},
		Subjects:   []rbacv1.Subject{{Kind: "User", Name: "limited", APIGroup: "rbac.authorization.k8s.io"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	limited := client(t, kubeapi.Prepare(e.srv.UserConfig("limited"), "test"))
	_, err = kubesecret.NewWriter(limited.CoreV1()).Apply(ctx, "rbac-a", "ecr-credentials", managed, auths("pw-rbac"), nil)
	want := `secrets "ecr-credentials" is forbidden: cannot create secrets in namespace rbac-a: grant verbs [get create update] on secrets in that namespace`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v\nwant it to contain %q", err, want)
	}
	if strings.Contains(err.Error(), "pw-rbac") {
		t.Fatal("password in the error")
	}
}

func TestWriter_RefusesForeignByDefaultAndByOwnRule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"own-a": nil})
	ctx := context.Background()
	w := kubesecret.NewWriter(e.admin.CoreV1())
	if _, err := w.Apply(ctx, "own-a", "s", managed, auths("pw-own"), nil); err != nil {
		t.Fatal(err)
	}
	refuse := func(s *corev1.Secret) error { return errTest }
	if _, err := w.Apply(ctx, "own-a", "s", managed, auths("pw-own-2"), refuse); err != errTest && !strings.Contains(err.Error(), errTest.Error()) {
		t.Fatalf("own's refusal not returned: %v", err)
	}
}

var errTest = testError("refused by the caller's rule")

type testError string

func (e testError) Error() string { return string(e) }
