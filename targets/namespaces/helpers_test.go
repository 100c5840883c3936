package kube_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"

	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/kube"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
)

var server kubetest.Shared

func TestMain(m *testing.M) { os.Exit(server.Run(m)) }

const host = "111122223333.dkr.ecr.us-east-1.amazonaws.com"

// syncBuffer is the shared log sink, safe for concurrent writes and reads.
type syncBuffer = logbuf.Buffer

// env is one test's client, logs and fake ECR, whose every answer is a new
// password; at the end no password handed out may appear in the logs.
type env struct {
	t      *testing.T
	srv    *kubetest.Server
	admin  kubernetes.Interface
	logs   *syncBuffer
	log    *logrus.Logger
	mu     sync.Mutex
	issued []string
	n      atomic.Int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := server.Start(t)
	e := &env{t: t, srv: srv, admin: client(t, srv.AdminConfig()), logs: &syncBuffer{}}
	e.log = logrus.New()
	e.log.SetOutput(e.logs)
	e.log.SetLevel(logrus.DebugLevel)
	t.Cleanup(func() {
		out := e.logs.String()
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, pw := range e.issued {
			if strings.Contains(out, pw) {
				t.Errorf("a password reached the logs:\n%s", out)
			}
		}
		if t.Failed() {
			t.Logf("logs:\n%s", out)
		}
	})
	return e
}

var client = kubetest.Clientset

// ecr answers a new password on every call.
func (e *env) ecr() *ecrtest.Fake {
	return &ecrtest.Fake{GetAuthorizationTokenFunc: func(context.Context, *ecr.GetAuthorizationTokenInput) (*ecr.GetAuthorizationTokenOutput, error) {
		pw := fmt.Sprintf("secret-password-%d-%d", time.Now().UnixNano(), e.n.Add(1))
		e.mu.Lock()
		e.issued = append(e.issued, pw)
		e.mu.Unlock()
		return ecrtest.Output(time.Now().Add(12*time.Hour), ecrtest.Login{Host: host, Password: pw}), nil
	}}
}

// refresher returns a refresher writing through n (Discover and Wake wired as
// main wires them), and starts n.
func (e *env) refresher(n *kube.Namespaces) *refresher.Refresher {
	r := refresher.New([]refresher.Source{{Region: "us-east-1", Client: e.ecr()}}, nil)
	r.Logger = e.log
	r.Discover = n.Discover
	n.OnChange = r.Wake
	e.start(n)
	return r
}

// namespaces creates namespaces (name → labels) and returns their names.
func (e *env) namespaces(nss map[string]map[string]string) {
	e.t.Helper()
	for name, labels := range nss {
		_, err := e.admin.CoreV1().Namespaces().Create(e.t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
		if err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) secret(ns, name string) (*corev1.Secret, bool) {
	e.t.Helper()
	s, err := e.admin.CoreV1().Secrets(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return nil, false
	}
	return s, true
}

// password returns the password for host in a dockerconfigjson Secret, after
// checking the entry is whole (username, password, auth).
func password(t *testing.T, s *corev1.Secret) string {
	t.Helper()
	if s.Type != corev1.SecretTypeDockerConfigJson || s.Labels[kube.ManagedByLabel] != kube.ManagedBy {
		t.Fatalf("secret %s/%s: type %s labels %v", s.Namespace, s.Name, s.Type, s.Labels)
	}
	var cfg struct {
		Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
		t.Fatal(err)
	}
	a := cfg.Auths[host]
	if a.Username != "AWS" || a.Password == "" || a.Auth == "" {
		t.Fatalf("secret %s/%s: entry for %s is %+v", s.Namespace, s.Name, host, a)
	}
	return a.Password
}

// waitFor polls cond until it holds or d passes.
var waitFor = testwait.For

// start starts n's informers for the test's lifetime, logging into e.
func (e *env) start(n *kube.Namespaces) *kube.Namespaces {
	n.Logger = e.log
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	n.Start(ctx)
	return n
}

func scopeNames(t *testing.T, n *kube.Namespaces) []string {
	t.Helper()
	scopes, err := n.Discover(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range scopes {
		names = append(names, s.Name)
	}
	return names
}
