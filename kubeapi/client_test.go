package kubeapi_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/kube"
)

var _ kube.Client = (*kubernetes.Clientset)(nil)

// A redirect is never followed: the bearer token would go with it.
func TestPrepare_RefusesRedirects(t *testing.T) {
	t.Parallel()
	var reached atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer elsewhere.Close()
	target, _ := url.Parse(elsewhere.URL)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/steal?token=x", http.StatusFound)
	}))
	defer api.Close()
	cfg := kube.Prepare(&rest.Config{Host: api.URL, BearerToken: "bearer-token-secret"}, "test/1")
	if cfg.QPS != kube.DefaultQPS || cfg.Burst != kube.DefaultBurst || cfg.UserAgent != "test/1" {
		t.Errorf("QPS %v burst %d user agent %q", cfg.QPS, cfg.Burst, cfg.UserAgent)
	}
	_, err := client(t, cfg).CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
	if err == nil {
		t.Fatal("a redirect was followed")
	}
	if !strings.Contains(err.Error(), "redirect to host "+target.Host) || strings.Contains(err.Error(), "bearer-token-secret") || strings.Contains(err.Error(), "token=x") {
		t.Errorf("error = %v", err)
	}
	if reached.Load() != 0 {
		t.Error("the redirect target was reached")
	}
}
