// Package targettest is what the tests of the Kubernetes targets (namespaces,
// projectsecret, the consumer targets) and of the Secret library share: one
// test's view of a real kube-apiserver (kubetest) with an admin client, a
// token source whose every password is recorded, a refresher running a target
// as the daemon does, and the check that no password handed out, nor any
// other secret named, reached the logs.
package targettest

import (
	"context"
	"encoding/base64"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// Env is one test's server, admin client, logs and token source.
type Env struct {
	mu      sync.Mutex
	secrets []string // besides the passwords handed out, what may not reach the logs

	T     *testing.T
	Srv   *kubetest.Server
	Admin kubernetes.Interface
	Logs  *logbuf.Buffer
	Log   *logrus.Logger // at debug level, into Logs
	Src   *Source
}

// New returns an Env on the shared server whose source hands out tokens for
// hosts. When the test ends, no password handed out and no secret given to
// NoLog may be in the logs (nor the first 40 characters of one, nor of its
// auth encoding); when it failed, the logs are logged.
func New(t *testing.T, shared *kubetest.Shared, hosts ...string) *Env {
	t.Helper()
	srv := shared.Start(t)
	e := &Env{T: t, Srv: srv, Admin: kubetest.Clientset(t, srv.AdminConfig()), Logs: &logbuf.Buffer{}, Log: logrus.New(), Src: &Source{Hosts: hosts}}
	e.Log.SetOutput(e.Logs)
	e.Log.SetLevel(logrus.DebugLevel)
	t.Cleanup(func() {
		out := e.Logs.String()
		for _, s := range e.Secrets() {
			if Leaked(out, s) {
				t.Errorf("a password or secret reached the logs")
			}
		}
		if t.Failed() {
			t.Logf("logs:\n%s", out)
		}
	})
	return e
}

// NoLog adds secrets (a token, a key) that may not reach the logs either.
func (e *Env) NoLog(secrets ...string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secrets = append(e.secrets, secrets...)
}

// Secrets is every password handed out so far and every secret given to NoLog.
func (e *Env) Secrets() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append(e.Src.Issued(), e.secrets...)
}

// Leaked reports whether text holds secret, the first 40 characters of it,
// or of its auth encoding ("AWS:<secret>" in base64, as a Docker config
// holds it).
func Leaked(text, secret string) bool {
	auth := base64.StdEncoding.EncodeToString([]byte("AWS:" + secret))
	return secret != "" && (strings.Contains(text, secret[:min(40, len(secret))]) || strings.Contains(text, auth[:min(40, len(auth))]))
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

// Starter is a target that watches its platform and pushes scopes into a
// refresher.
type Starter interface {
	Start(ctx context.Context, r *refresher.Refresher) error
	Empty() string
}

// Watch starts t into r until the test ends (its watches, not r's loop);
// Start must succeed.
func (e *Env) Watch(t Starter, r *refresher.Refresher) {
	e.T.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.T.Cleanup(cancel)
	r.ExplainNoScopes = t.Empty
	if err := t.Start(ctx, r); err != nil {
		e.T.Fatalf("Start: %v", err)
	}
}

// Run runs r's loop until the test ends.
func (e *Env) Run(r *refresher.Refresher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, "@every 24h") }()
	e.T.Cleanup(func() { cancel(); testwait.Recv(e.T, done) })
}

// Started returns a new refresher (Refresher) with t started into it and its
// loop running (Start).
func (e *Env) Started(t Starter) *refresher.Refresher {
	e.T.Helper()
	r := e.Refresher()
	e.Start(t, r)
	return r
}

// Start starts t into r and runs r's loop, both until the test ends, as the
// daemon does; Start must succeed.
func (e *Env) Start(t Starter, r *refresher.Refresher) {
	e.T.Helper()
	e.Watch(t, r)
	e.Run(r)
}
