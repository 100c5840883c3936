package targettest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// Namespace creates namespace name.
func (e *Env) Namespace(name string) { e.LabelledNamespace(name, nil) }

// LabelledNamespace creates namespace name with labels.
func (e *Env) LabelledNamespace(name string, labels map[string]string) {
	e.T.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := e.Admin.CoreV1().Namespaces().Create(e.T.Context(), ns, metav1.CreateOptions{}); err != nil {
		e.T.Fatal(err)
	}
}

// Create creates s and returns it as stored.
func (e *Env) Create(s *corev1.Secret) *corev1.Secret {
	e.T.Helper()
	out, err := e.Admin.CoreV1().Secrets(s.Namespace).Create(e.T.Context(), s, metav1.CreateOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	return out
}

// Secret reads namespace/name.
func (e *Env) Secret(namespace, name string) *corev1.Secret {
	e.T.Helper()
	s, err := e.Admin.CoreV1().Secrets(namespace).Get(e.T.Context(), name, metav1.GetOptions{})
	if err != nil {
		e.T.Fatalf("get secret %s/%s: %v", namespace, name, err)
	}
	return s
}

// SecretRule allows verbs on Secrets.
func SecretRule(verbs ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: verbs}
}

// Grant binds a Role of rules in ns, both named user, to user.
func (e *Env) Grant(ns, user string, rules ...rbacv1.PolicyRule) {
	e.T.Helper()
	e.GrantTo(ns, user, rbacv1.Subject{Kind: "User", Name: user, APIGroup: "rbac.authorization.k8s.io"}, rules...)
}

// GrantTo binds a Role of rules in ns, both named name, to subject, and
// waits until the server allows the first rule.
func (e *Env) GrantTo(ns, name string, subject rbacv1.Subject, rules ...rbacv1.PolicyRule) {
	e.T.Helper()
	ctx := e.T.Context()
	if _, err := e.Admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		e.T.Fatal(err)
	}
	if _, err := e.Admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: name},
		Subjects: []rbacv1.Subject{subject}}, metav1.CreateOptions{}); err != nil {
		e.T.Fatal(err)
	}
	if len(rules) > 0 {
		user, groups := kubetest.SubjectUser(subject)
		kubetest.WaitAuthorized(e.T, e.Admin, user, groups, kubetest.RuleAttributes(ns, rules[0]), true)
	}
}

// WaitWritten waits (bounded) until namespace/name's key holds want, and
// returns the Secret then.
func (e *Env) WaitWritten(namespace, name, key string, want func() string) *corev1.Secret {
	e.T.Helper()
	var s *corev1.Secret
	testwait.For(e.T, testwait.Limit, "secret "+namespace+"/"+name+" key "+key+" to hold the fresh token", func() bool {
		got, err := e.Admin.CoreV1().Secrets(namespace).Get(e.T.Context(), name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return false // not written yet
		case err != nil:
			e.T.Fatalf("get secret %s/%s: %v", namespace, name, err)
		}
		s = got
		w := want()
		return w != "" && strings.Contains(string(s.Data[key]), w)
	})
	return s
}

// Readiness waits (bounded) until r's readiness reason contains want.
func (e *Env) Readiness(r *refresher.Refresher, want string) refresher.Readiness {
	e.T.Helper()
	var rd refresher.Readiness
	testwait.For(e.T, testwait.Limit, "readiness to say "+want, func() bool {
		rd = r.Readiness(time.Now())
		return strings.Contains(rd.Reason, want)
	})
	return rd
}

// HasScope reports whether r has the scope name.
func HasScope(r *refresher.Refresher, name string) bool { return slices.Contains(r.Scopes(), name) }

// Entry is one registry's entry of a Docker config.
type Entry struct{ Username, Password, Auth string }

// Auths returns a dockerconfigjson Secret's entries, by registry.
func Auths(t testing.TB, s *corev1.Secret) map[string]Entry {
	t.Helper()
	var cfg struct {
		Auths map[string]Entry `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
		t.Fatalf("secret %s/%s: %v", s.Namespace, s.Name, err)
	}
	return cfg.Auths
}

// Password returns the password for host, after checking that s is a
// dockerconfigjson Secret labelled as this daemon's whose entry for host is
// whole (username AWS, a password, auth).
func Password(t testing.TB, s *corev1.Secret, host string) string {
	t.Helper()
	if s.Type != corev1.SecretTypeDockerConfigJson || s.Labels[kubesecret.ManagedByLabel] != kubesecret.ManagedBy {
		t.Fatalf("secret %s/%s: type %s labels %v", s.Namespace, s.Name, s.Type, s.Labels)
	}
	a := Auths(t, s)[host]
	if a.Username != "AWS" || a.Password == "" || a.Auth == "" {
		t.Fatalf("secret %s/%s: entry for %s is incomplete (username %q, %d-character password, %d-character auth)",
			s.Namespace, s.Name, host, a.Username, len(a.Password), len(a.Auth))
	}
	return a.Password
}

// WantErr fails t unless err is an error whose text contains every part.
func WantErr(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q lacks %q", err, p)
		}
	}
}
