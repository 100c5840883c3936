package namespaces_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/namespaces"
)

var server kubetest.Shared

func TestMain(m *testing.M) { os.Exit(server.Run(m)) }

const host = "111122223333.dkr.ecr.us-east-1.amazonaws.com"

// passwordSize is the length of a real ECR password (about 2,400 characters).
const passwordSize = 2400

// realPassword returns a fresh password of the size ECR hands out.
func realPassword() string {
	b := make([]byte, passwordSize*3/4)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// source is the refresher's Source: every fetch a new real-size password for
// host, each recorded so that no log may hold one.
type source struct {
	mu     sync.Mutex
	issued []string
	now    func() time.Time
}

func (s *source) Label() string  { return "test registries in us-east-1" }
func (s *source) Region() string { return "us-east-1" }

func (s *source) Fetch(context.Context) refresher.Fetched {
	pw := realPassword()
	s.mu.Lock()
	s.issued = append(s.issued, pw)
	s.mu.Unlock()
	now := s.now()
	return refresher.Fetched{Tokens: []refresher.Token{{Host: host, ECRHost: host, RegistryID: "111122223333", Region: "us-east-1",
		Username: "AWS", Password: pw, FetchedAt: now, ExpiresAt: now.Add(12 * time.Hour)}}}
}

// env is one test's client, logs and token source; at the end no password
// handed out may appear in the logs.
type env struct {
	t     *testing.T
	srv   *kubetest.Server
	admin kubernetes.Interface
	logs  *logbuf.Buffer
	log   *logrus.Logger
	src   *source
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := server.Start(t)
	e := &env{t: t, srv: srv, admin: kubetest.Clientset(t, srv.AdminConfig()), logs: &logbuf.Buffer{}, src: &source{now: time.Now}}
	e.log = logrus.New()
	e.log.SetOutput(e.logs)
	e.log.SetLevel(logrus.DebugLevel)
	t.Cleanup(func() {
		out := e.logs.String()
		e.src.mu.Lock()
		defer e.src.mu.Unlock()
		for _, pw := range e.src.issued {
			auth := base64.StdEncoding.EncodeToString([]byte("AWS:" + pw))
			if strings.Contains(out, pw) || strings.Contains(out, pw[:40]) || strings.Contains(out, auth[:40]) {
				t.Errorf("a password reached the logs")
			}
		}
		if t.Failed() {
			t.Logf("logs:\n%s", out)
		}
	})
	return e
}

// target returns a target over the admin client, logging into e.
func (e *env) target(o namespaces.Options) *namespaces.Target {
	c, err := kubeapi.New(kubeapi.Prepare(e.srv.AdminConfig(), kubeapi.Options{UserAgent: "test"}))
	if err != nil {
		e.t.Fatal(err)
	}
	t := namespaces.New(namespaces.API(c), o)
	t.Logger = e.log
	return t
}

// refresher returns a refresher writing e's tokens, logging into e.
func (e *env) refresher() *refresher.Refresher {
	r := refresher.New([]refresher.Source{e.src}, nil)
	r.Logger = e.log
	return r
}

// start starts t into r for the test's lifetime; Start must succeed.
func (e *env) start(t *namespaces.Target, r *refresher.Refresher) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	r.ExplainNoScopes = t.Empty
	if err := t.Start(ctx, r); err != nil {
		e.t.Fatalf("Start: %v", err)
	}
}

// run runs r's loop until the test ends.
func (e *env) run(r *refresher.Refresher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, "@every 24h") }()
	e.t.Cleanup(func() { cancel(); testwait.Recv(e.t, done) })
}

// namespaces creates namespaces (name → labels).
func (e *env) namespaces(nss map[string]map[string]string) {
	e.t.Helper()
	for name, labels := range nss {
		_, err := e.admin.CoreV1().Namespaces().Create(e.t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

// relabel sets a namespace's labels.
func (e *env) relabel(name string, labels map[string]string) {
	e.t.Helper()
	ns, err := e.admin.CoreV1().Namespaces().Get(e.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	ns.Labels = labels
	if _, err := e.admin.CoreV1().Namespaces().Update(e.t.Context(), ns, metav1.UpdateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) secret(ns, name string) (*corev1.Secret, bool) {
	s, err := e.admin.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	return s, err == nil
}

func (e *env) createSecret(s *corev1.Secret) *corev1.Secret {
	e.t.Helper()
	out, err := e.admin.CoreV1().Secrets(s.Namespace).Create(e.t.Context(), s, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// password returns the password for host in a dockerconfigjson Secret, after
// checking the entry is whole (username, password, auth).
func password(t *testing.T, s *corev1.Secret) string {
	t.Helper()
	if s.Type != corev1.SecretTypeDockerConfigJson || s.Labels[kubesecret.ManagedByLabel] != kubesecret.ManagedBy {
		t.Fatalf("secret %s/%s: type %s labels %v", s.Namespace, s.Name, s.Type, s.Labels)
	}
	var cfg struct {
		Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
		t.Fatal(err)
	}
	a := cfg.Auths[host]
	if a.Username != "AWS" || len(a.Password) != passwordSize || a.Auth == "" {
		t.Fatalf("secret %s/%s: entry for %s is incomplete", s.Namespace, s.Name, host)
	}
	return a.Password
}

// hasScope reports whether r has the scope.
func hasScope(r *refresher.Refresher, name string) bool {
	for _, s := range r.Scopes() {
		if s == name {
			return true
		}
	}
	return false
}

// waitFor polls cond until it holds or d passes.
var waitFor = testwait.For

func wantErr(t *testing.T, err error, parts ...string) {
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

func mustSelection(t testing.TB, include []string, selector string, exclude []string) namespaces.Selection {
	t.Helper()
	s, err := namespaces.ParseSelection(include, selector, exclude)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
