package rancher

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
)

// deps are the wiring's dependencies, with the local cluster at kubeHost
// (none when empty).
func deps(kubeHost string) setup.Deps {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return setup.Deps{Log: l, Metrics: prometheus.NewRegistry(), UserAgent: "rancher-ecr-credentials/test",
		Kubernetes: func() (*rest.Config, string, error) {
			if kubeHost == "" {
				return nil, "", errors.New("no in-cluster configuration and no KUBECONFIG")
			}
			return &rest.Config{Host: kubeHost}, "cattle-system", nil
		}}
}

// Inside the local cluster: no CATTLE_URL, no key, project ids named.
func TestInCluster(t *testing.T) {
	t.Parallel()
	v := values(t, nil, map[string]string{"RANCHER_PROJECTS": "local:p-abcde, c-m-abc123:p-vwxyz"})
	c := parse(v)
	if err := v.Err(); err != nil || !c.inCluster || c.secretAPI != "auto" || len(c.projects) != 2 {
		t.Fatalf("config = %v, %v", c, err)
	}
	p, err := Kind().Build(v, deps("https://10.43.0.1:443"))
	if err != nil || p == nil {
		t.Fatalf("build: %v", err)
	}
	if len(p.Scopes) != 2 || p.Scopes[0].Name != "local:p-abcde" || p.Scopes[0].Group != "" || p.Discover != nil {
		t.Errorf("scopes = %+v", p.Scopes)
	}
	if p.Fields["cattle_url"] != "(none: in-cluster Kubernetes API)" || p.Fields["kubernetes_api"] != "https://10.43.0.1:443" {
		t.Errorf("fields = %v", p.Fields)
	}

	v = values(t, []string{"--rancher-secret-api=Kubernetes"}, map[string]string{"RANCHER_PROJECTS": "all"})
	if c := parse(v); v.Err() != nil || !c.inCluster || !c.all || c.secretAPI != "kubernetes" {
		t.Errorf("all: %v, %v", c, v.Err())
	}
	if p, err := Kind().Build(v, deps("https://10.43.0.1:443")); err != nil || p.Discover == nil || p.Empty == nil || p.Empty() != "" {
		t.Errorf("all: %+v, %v", p, err)
	}
	// Outside a cluster, with no KUBECONFIG: the error says what the setting needs.
	if _, err := Kind().Build(v, deps("")); err == nil || !strings.Contains(err.Error(), "RANCHER_PROJECTS without CATTLE_URL writes through the local cluster's Kubernetes API") {
		t.Errorf("no cluster: %v", err)
	}
}
