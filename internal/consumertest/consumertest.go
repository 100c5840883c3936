// Package consumertest is what the consumer targets' tests share: a real
// kube-apiserver (kubetest), a token source for a few registry hosts whose
// every password is recorded, a refresher running the target as the daemon
// would, and the check that no password handed out reached the logs.
package consumertest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

// Hosts are the registries the source hands out tokens for: two private ECR
// registries and ECR Public.
var Hosts = []string{"111122223333.dkr.ecr.us-east-1.amazonaws.com", "444455556666.dkr.ecr.eu-west-1.amazonaws.com", "public.ecr.aws"}

// Unmanaged is an ECR registry host the source never hands out.
const Unmanaged = "999999999999.dkr.ecr.us-east-1.amazonaws.com"

// PasswordSize is the length of a real ECR password (about 2,400 characters).
const PasswordSize = 2400

// Source is a refresher Source: every fetch a new real-size password per
// host, each recorded.
type Source struct {
	mu     sync.Mutex
	issued []string
	last   map[string]string
}

func (s *Source) Label() string  { return "test registries" }
func (s *Source) Region() string { return "us-east-1" }

// Fetch hands out a fresh token for every host of Hosts.
func (s *Source) Fetch(context.Context) refresher.Fetched {
	now := time.Now()
	var toks []refresher.Token
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[string]string{}
	}
	for _, h := range Hosts {
		b := make([]byte, PasswordSize*3/4)
		_, _ = rand.Read(b)
		pw := base64.StdEncoding.EncodeToString(b)
		s.issued = append(s.issued, pw)
		s.last[h] = pw
		acct, region, _ := registryhost.ParseECR(h)
		toks = append(toks, refresher.Token{Host: h, ECRHost: h, RegistryID: acct, Region: region, Username: "AWS", Password: pw,
			FetchedAt: now, ExpiresAt: now.Add(refresher.TokenLifetime)})
	}
	return refresher.Fetched{Tokens: toks}
}

// Password is the last password handed out for host.
func (s *Source) Password(host string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last[host]
}

// Env is one test's server, clients, logs and token source.
type Env struct {
	T     *testing.T
	Srv   *kubetest.Server
	Admin kubernetes.Interface
	Logs  *logbuf.Buffer
	Log   *logrus.Logger
	Src   *Source
}

// New returns an Env on the shared server; when the test ends, no password
// handed out may be in the logs (nor the first 40 characters of one, nor of
// its auth encoding).
func New(t *testing.T, shared *kubetest.Shared) *Env {
	t.Helper()
	srv := shared.Start(t)
	e := &Env{T: t, Srv: srv, Admin: kubetest.Clientset(t, srv.AdminConfig()), Logs: &logbuf.Buffer{}, Log: logrus.New(), Src: &Source{}}
	e.Log.SetOutput(e.Logs)
	e.Log.SetLevel(logrus.DebugLevel)
	t.Cleanup(func() {
		out := e.Logs.String()
		e.Src.mu.Lock()
		defer e.Src.mu.Unlock()
		for _, pw := range e.Src.issued {
			auth := base64.StdEncoding.EncodeToString([]byte("AWS:" + pw))
			if strings.Contains(out, pw[:40]) || strings.Contains(out, auth[:40]) {
				t.Errorf("a password reached the logs")
			}
		}
		if t.Failed() {
			t.Logf("logs:\n%s", out)
		}
	})
	return e
}

// Client is a kubeapi client over cfg (AdminConfig when nil).
func (e *Env) Client(cfg *rest.Config) *kubeapi.Client {
	e.T.Helper()
	if cfg == nil {
		cfg = e.Srv.AdminConfig()
	}
	c, err := kubeapi.New(kubeapi.Prepare(cfg, kubeapi.Options{UserAgent: "test"}))
	if err != nil {
		e.T.Fatal(err)
	}
	return c
}

// Refresher returns a refresher writing e's tokens, logging into e.
func (e *Env) Refresher() *refresher.Refresher {
	r := refresher.New([]refresher.Source{e.Src}, nil)
	r.Logger = e.Log
	return r
}

// Starter is a consumer target.
type Starter interface {
	Start(ctx context.Context, r *refresher.Refresher) error
	Empty() string
}

// Start starts t into r until the test ends, then runs r's loop; Start must
// succeed.
func (e *Env) Start(t Starter, r *refresher.Refresher) {
	e.T.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.ExplainNoScopes = t.Empty
	if err := t.Start(ctx, r); err != nil {
		cancel()
		e.T.Fatalf("Start: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, "@every 24h") }()
	e.T.Cleanup(func() { cancel(); testwait.Recv(e.T, done) })
}

// Namespace creates namespace name.
func (e *Env) Namespace(name string) {
	e.T.Helper()
	if _, err := e.Admin.CoreV1().Namespaces().Create(e.T.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
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
	s, err := e.Admin.CoreV1().Secrets(namespace).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		e.T.Fatalf("get secret %s/%s: %v", namespace, name, err)
	}
	return s
}

// WaitWritten waits (bounded) until namespace/name's key holds want, and
// returns the Secret then.
func (e *Env) WaitWritten(namespace, name, key string, want func() string) *corev1.Secret {
	e.T.Helper()
	var s *corev1.Secret
	testwait.For(e.T, testwait.Limit, "secret "+namespace+"/"+name+" key "+key+" to hold the fresh token", func() bool {
		s = e.Secret(namespace, name)
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

// SameButFields fails the test unless after is before with only the data
// keys fields changed: same uid and type, labels, annotations and every other
// key byte for byte.
func SameButFields(t testing.TB, before, after *corev1.Secret, fields ...string) {
	t.Helper()
	if after.UID != before.UID || after.Type != before.Type {
		t.Errorf("secret %s/%s: uid %s type %s, want %s %s: not updated in place", after.Namespace, after.Name, after.UID, after.Type, before.UID, before.Type)
	}
	if !maps.Equal(before.Labels, after.Labels) || !maps.Equal(before.Annotations, after.Annotations) {
		t.Errorf("secret %s/%s: labels or annotations changed: %v %v → %v %v", after.Namespace, after.Name, before.Labels, before.Annotations, after.Labels, after.Annotations)
	}
	for k, v := range before.Data {
		if !slices.Contains(fields, k) && string(after.Data[k]) != string(v) {
			t.Errorf("secret %s/%s: key %s changed", after.Namespace, after.Name, k)
		}
	}
	for k := range after.Data {
		if _, had := before.Data[k]; !had && !slices.Contains(fields, k) {
			t.Errorf("secret %s/%s: key %s added", after.Namespace, after.Name, k)
		}
	}
}

// HasScope reports whether r has the scope name.
func HasScope(r *refresher.Refresher, name string) bool { return slices.Contains(r.Scopes(), name) }

// Grant binds a Role in ns allowing verbs on Secrets to user.
func Grant(e *Env, ns, user string, verbs ...string) {
	e.T.Helper()
	ctx := e.T.Context()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: verbs}}}
	if _, err := e.Admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		e.T.Fatal(err)
	}
	if _, err := e.Admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: user},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: user, APIGroup: "rbac.authorization.k8s.io"}}}, metav1.CreateOptions{}); err != nil {
		e.T.Fatal(err)
	}
}

// ClusterRepo creates Rancher's ClusterRepo name (its CRD installed) as Rancher's UI does for an OCI
// repository: spec.url, and spec.clientSecret {name, namespace} unless secretName is "".
func ClusterRepo(t testing.TB, cfg *rest.Config, name, url, secretNS, secretName string) *unstructured.Unstructured {
	t.Helper()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	spec := map[string]any{"url": url}
	if secretName != "" {
		spec["clientSecret"] = map[string]any{"name": secretName, "namespace": secretNS}
	}
	out, err := dyn.Resource(schema.GroupVersionResource{Group: "catalog.cattle.io", Version: "v1", Resource: "clusterrepos"}).Create(t.Context(),
		&unstructured.Unstructured{Object: map[string]any{"apiVersion": "catalog.cattle.io/v1", "kind": "ClusterRepo", "metadata": map[string]any{"name": name}, "spec": spec}},
		metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create ClusterRepo %s: %v", name, err)
	}
	return out
}
