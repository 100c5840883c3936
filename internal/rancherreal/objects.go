package rancherreal

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// LocalCluster is the id of Rancher's own cluster.
const LocalCluster = "local"

// ObjectTimeout bounds each wait of the helpers below for Rancher's controllers.
const ObjectTimeout = 90 * time.Second

var projectsResource = schema.GroupVersionResource{Group: "management.cattle.io", Version: "v3", Resource: "projects"}

// Project is a project of the local cluster.
type Project struct {
	ID               string // local:p-xxxxx
	Name             string // p-xxxxx
	BackingNamespace string // where its project-scoped Secrets live
}

// Suffix returns a random lowercase suffix for names that must not collide across tests and runs.
func Suffix() string { return strings.ToLower(rand.Text()[:6]) }

// Kube is an admin client of the local cluster (system:masters, not through Rancher).
func (s *Server) KubeClient(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(s.Kube.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (s *Server) dynamic(t testing.TB) dynamic.Interface {
	t.Helper()
	c, err := dynamic.NewForConfig(s.Kube.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ctxFor(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), ObjectTimeout)
}

// NewProject creates a project in the local cluster through /v3, as the UI does, and waits until
// Rancher has made its backing namespace. Without the rancher-webhook its status.backingNamespace
// stays empty, so that namespace is the project id (the layout of projects made before 2.9.9).
func (s *Server) NewProject(t testing.TB, displayName string) Project {
	t.Helper()
	ctx, cancel := ctxFor(t)
	defer cancel()
	var out struct {
		ID string `json:"id"`
	}
	if err := s.V3(ctx, s.AdminToken, http.MethodPost, "/v3/projects",
		map[string]any{"type": "project", "name": displayName, "clusterId": LocalCluster}, &out); err != nil {
		t.Fatalf("create project %s: %v", displayName, err)
	}
	_, name, _ := strings.Cut(out.ID, ":")
	return s.waitProject(t, ctx, name)
}

// NewProjectWithBackingNamespace creates a project through the Kubernetes API with
// status.backingNamespace = local-<project>, the layout the rancher-webhook gives every project
// made by Rancher 2.12 (and 2.9.9+), and waits until Rancher has made that namespace.
func (s *Server) NewProjectWithBackingNamespace(t testing.TB, displayName string) Project {
	t.Helper()
	ctx, cancel := ctxFor(t)
	defer cancel()
	name := "p-" + Suffix()[:5]
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "management.cattle.io/v3",
		"kind":       "Project",
		"metadata": map[string]any{"name": name, "namespace": LocalCluster,
			"annotations": map[string]any{"field.cattle.io/creatorId": s.AdminID}},
		"spec":   map[string]any{"clusterName": LocalCluster, "displayName": displayName},
		"status": map[string]any{"backingNamespace": LocalCluster + "-" + name},
	}}
	if _, err := s.dynamic(t).Resource(projectsResource).Namespace(LocalCluster).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create project %s: %v", name, err)
	}
	p := s.waitProject(t, ctx, name)
	if want := LocalCluster + "-" + name; p.BackingNamespace != want {
		t.Fatalf("project %s: backing namespace %q, want %q", name, p.BackingNamespace, want)
	}
	return p
}

// Project returns the existing project id (<cluster>:<project>), once its backing namespace exists.
func (s *Server) Project(t testing.TB, id string) Project {
	t.Helper()
	ctx, cancel := ctxFor(t)
	defer cancel()
	_, name, _ := strings.Cut(id, ":")
	return s.waitProject(t, ctx, name)
}

// waitProject reads the project and waits for its backing namespace to exist.
func (s *Server) waitProject(t testing.TB, ctx context.Context, name string) Project {
	t.Helper()
	obj, err := s.dynamic(t).Resource(projectsResource).Namespace(LocalCluster).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read project %s: %v", name, err)
	}
	p := Project{ID: LocalCluster + ":" + name, Name: name, BackingNamespace: name}
	if ns, _, _ := unstructured.NestedString(obj.Object, "status", "backingNamespace"); ns != "" {
		p.BackingNamespace = ns
	}
	kc := s.KubeClient(t)
	if err := s.poll(ctx, 200*time.Millisecond, "backing namespace "+p.BackingNamespace+" of "+p.ID, func() (bool, error) {
		_, err := kc.CoreV1().Namespaces().Get(ctx, p.BackingNamespace, metav1.GetOptions{})
		return err == nil, err
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

// NewNamespace creates a namespace in project p, as the UI does (annotation
// field.cattle.io/projectId: <cluster>:<project>), with a random suffix after prefix.
func (s *Server) NewNamespace(t testing.TB, p Project, prefix string) string {
	t.Helper()
	ctx, cancel := ctxFor(t)
	defer cancel()
	name := prefix + "-" + Suffix()
	if _, err := s.KubeClient(t).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name, Annotations: map[string]string{"field.cattle.io/projectId": p.ID},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s in %s: %v", name, p.ID, err)
	}
	return name
}

// User is a local Rancher user with an API key.
type User struct {
	ID, Username, Password string
	// Key is an API key with no scope: token-xxxxx:secret. KeyName is its name (token-xxxxx).
	Key, KeyName string
	// KeyExpiresAt is the key's expiresAt as Rancher reports it (RFC 3339).
	KeyExpiresAt string
}

// NewUser creates a local user with the global role user-base (may log in, nothing else: a user an
// admin has not yet given any cluster or project role) and an API key that lives keyTTL.
func (s *Server) NewUser(t testing.TB, prefix string, keyTTL time.Duration) User {
	t.Helper()
	ctx, cancel := ctxFor(t)
	defer cancel()
	u := User{Username: prefix + "-" + Suffix(), Password: "pw-" + rand.Text()}
	var out struct {
		ID string `json:"id"`
	}
	if err := s.V3(ctx, s.AdminToken, http.MethodPost, "/v3/users", map[string]any{
		"type": "user", "username": u.Username, "password": u.Password, "enabled": true, "mustChangePassword": false,
	}, &out); err != nil {
		t.Fatalf("create user %s: %v", u.Username, err)
	}
	u.ID = out.ID
	if err := s.V3(ctx, s.AdminToken, http.MethodPost, "/v3/globalrolebindings", map[string]any{
		"type": "globalRoleBinding", "globalRoleId": "user-base", "userId": u.ID,
	}, nil); err != nil {
		t.Fatalf("bind user %s to user-base: %v", u.ID, err)
	}
	var session string
	if err := s.poll(ctx, 500*time.Millisecond, "login of "+u.Username, func() (bool, error) {
		var err error
		session, err = s.login(ctx, u.Username, u.Password)
		return err == nil, err
	}); err != nil {
		t.Fatal(err)
	}
	key, err := s.createAPIKey(ctx, session, "rancherreal "+u.Username, keyTTL)
	if err != nil {
		t.Fatalf("API key of %s: %v", u.Username, err)
	}
	u.Key, u.KeyName, u.KeyExpiresAt = key.Token, key.Name, key.ExpiresAt
	return u
}

// BindProject gives u the project role roleTemplate (project-member, project-owner, read-only, …) on
// p, as the UI's Members tab does, and waits until Rancher has turned it into RBAC in p's backing
// namespace that lets u create Secrets there, when the role should (wantSecrets).
func (s *Server) BindProject(t testing.TB, u User, p Project, roleTemplate string, wantSecrets bool) {
	t.Helper()
	ctx, cancel := ctxFor(t)
	defer cancel()
	// A role template made a moment ago may not be in Rancher's cache yet ("not found", 500).
	if err := s.poll(ctx, 500*time.Millisecond, fmt.Sprintf("bind %s as %s on %s", u.ID, roleTemplate, p.ID), func() (bool, error) {
		err := s.V3(ctx, s.AdminToken, http.MethodPost, "/v3/projectroletemplatebindings", map[string]any{
			"type": "projectRoleTemplateBinding", "projectId": p.ID, "userPrincipalId": "local://" + u.ID, "roleTemplateId": roleTemplate,
		}, nil)
		return err == nil || !strings.Contains(err.Error(), "not found"), err
	}); err != nil {
		t.Fatal(err)
	}
	if !wantSecrets {
		return
	}
	kc := s.KubeClient(t)
	if err := s.poll(ctx, 500*time.Millisecond, fmt.Sprintf("%s's %s rights on secrets in %s", u.ID, roleTemplate, p.BackingNamespace), func() (bool, error) {
		// Rancher may have made new aggregating ClusterRoles for the binding.
		if err := AggregateClusterRoles(ctx, s.Kube.AdminConfig()); err != nil {
			return false, err
		}
		r, err := kc.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.ID, Groups: []string{"system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "create", Resource: "secrets", Namespace: p.BackingNamespace},
		}}, metav1.CreateOptions{})
		if err != nil {
			return false, err
		}
		if !r.Status.Allowed {
			return false, fmt.Errorf("not allowed yet: %s", r.Status.Reason)
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// IgnoreNotFound returns nil for a 404.
func IgnoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
