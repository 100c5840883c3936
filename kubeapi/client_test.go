package kubeapi_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
)

// newClient returns a client for an httptest server running h.
func newClient(t *testing.T, h http.Handler) *kubeapi.Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := kubeapi.New(kubeapi.Prepare(&rest.Config{Host: srv.URL, BearerToken: "bearer-token-secret"}, kubeapi.Options{UserAgent: "test/1"}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func secretJSON(name string) []byte {
	b, _ := json.Marshal(corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: "7"}})
	return b
}

// A redirect is never followed: the bearer token would go with it.
func TestPrepare_RefusesRedirects(t *testing.T) {
	t.Parallel()
	var reached atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer elsewhere.Close()
	target, _ := url.Parse(elsewhere.URL)
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.URL+"/steal?token=x", http.StatusFound)
	}))
	_, err := c.Namespaces().List(t.Context(), metav1.ListOptions{})
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

func TestPrepare_Defaults(t *testing.T) {
	t.Parallel()
	cfg := kubeapi.Prepare(&rest.Config{Host: "https://127.0.0.1:1"}, kubeapi.Options{UserAgent: "test/1"})
	if cfg.QPS != kubeapi.DefaultQPS || cfg.Burst != kubeapi.DefaultBurst || cfg.UserAgent != "test/1" {
		t.Errorf("QPS %v burst %d user agent %q", cfg.QPS, cfg.Burst, cfg.UserAgent)
	}
	cfg = kubeapi.Prepare(&rest.Config{}, kubeapi.Options{QPS: 6000})
	if cfg.QPS != 6000 || cfg.Burst != 6000 {
		t.Errorf("QPS 6000 alone: QPS %v burst %d, want burst raised to QPS", cfg.QPS, cfg.Burst)
	}
}

// API Priority and Fairness answers 429 with Retry-After: the client waits
// that long and retries, reads and writes alike, and the caller sees success.
func TestClient_HonoursRetryAfter(t *testing.T) {
	t.Parallel()
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPatch} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var at []time.Time
			var bodies []string
			c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				at = append(at, time.Now())
				bodies = append(bodies, string(b))
				n := len(at)
				mu.Unlock()
				if n == 1 {
					w.Header().Set("Retry-After", "1")
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusTooManyRequests)
					_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"TooManyRequests","code":429,"message":"too many requests"}`))
					return
				}
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(secretJSON("s"))
			}))
			secrets := c.Secrets("ns")
			var err error
			switch method {
			case http.MethodGet:
				_, err = secrets.Get(t.Context(), "s", metav1.GetOptions{})
			case http.MethodPost:
				_, err = secrets.Create(t.Context(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{})
			case http.MethodPatch:
				_, err = secrets.Patch(t.Context(), "s", types.MergePatchType, []byte(`{"data":{}}`), metav1.PatchOptions{})
			}
			if err != nil {
				t.Fatalf("%s after a 429: %v", method, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(at) != 2 {
				t.Fatalf("%d requests, want 2 (one 429, one retry)", len(at))
			}
			if gap := at[1].Sub(at[0]); gap < 900*time.Millisecond {
				t.Errorf("retried after %s, before the 1 s Retry-After", gap)
			}
			if bodies[0] != bodies[1] {
				t.Errorf("the retry sent %q, the first attempt %q", bodies[1], bodies[0])
			}
		})
	}
}

// A DryRun client asks the server for dryRun=All on every write and on no
// read; the plain client never does.
func TestClient_DryRun(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := map[string]string{}
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Method] = r.URL.Query().Get("dryRun")
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(secretJSON("s"))
	}))
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "ns"}}
	for _, client := range []*kubeapi.Client{c, c.DryRun()} {
		ctx := t.Context()
		secrets := client.Secrets("ns")
		_, err := secrets.Get(ctx, "s", metav1.GetOptions{})
		if err == nil {
			_, err = secrets.Create(ctx, s, metav1.CreateOptions{})
		}
		if err == nil {
			_, err = secrets.Update(ctx, s, metav1.UpdateOptions{})
		}
		if err == nil {
			_, err = secrets.Patch(ctx, "s", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		if client != c {
			want = metav1.DryRunAll
		}
		mu.Lock()
		for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodPatch} {
			if got[m] != want {
				t.Errorf("%s dryRun=%q, want %q", m, got[m], want)
			}
		}
		if got[http.MethodGet] != "" {
			t.Errorf("GET dryRun=%q", got[http.MethodGet])
		}
		mu.Unlock()
	}
}

// A failed call is an *Error naming the call; the server's own text is kept
// bounded, on one line, without what looks like a secret.
func TestClient_ErrorsNameTheCall(t *testing.T) {
	t.Parallel()
	echoed := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldY", 3) // a token-like run a proxy echoes
	c := newClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/secrets/"):
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Forbidden","code":403,` +
				`"message":"secrets \"s\" is forbidden: User \"robot\" cannot get resource \"secrets\" in API group \"\" in the namespace \"ns\" ` + echoed + `"}`))
		case strings.Contains(r.URL.Path, "/leases"):
			w.WriteHeader(http.StatusUnauthorized)
		default:
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte("<html>\n" + strings.Repeat("garbage ", 100_000) + echoed))
		}
	}))
	var all []error
	_, err := c.Secrets("ns").Needs("get", "create", "update").Get(t.Context(), "s", metav1.GetOptions{})
	all = append(all, err)
	var e *kubeapi.Error
	if !errors.As(err, &e) || !apierrors.IsForbidden(err) || e.Temporary() {
		t.Fatalf("err = %#v, want a permanent *kubeapi.Error that IsForbidden", err)
	}
	for _, want := range []string{`secrets "s" is forbidden`, "cannot get secrets in namespace ns",
		"grant verbs [get create update] on secrets in that namespace (Role/ClusterRole with a RoleBinding)", `User "robot"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}

	_, err = c.Leases("ns").Get(t.Context(), "lease", metav1.GetOptions{})
	all = append(all, err)
	if !apierrors.IsUnauthorized(err) || !strings.Contains(err.Error(), "did not accept the credentials") || !strings.Contains(err.Error(), "leases.coordination.k8s.io") {
		t.Errorf("401: %v", err)
	}

	_, err = c.Namespaces().List(t.Context(), metav1.ListOptions{})
	all = append(all, err)
	if !errors.As(err, &e) || !e.Temporary() {
		t.Fatalf("502: err = %v, want a temporary *kubeapi.Error", err)
	}
	for _, err := range all {
		s := err.Error()
		if len(s) > 1000 || strings.Contains(s, "\n") {
			t.Errorf("error text not bounded to one short line (%d bytes): %q", len(s), s)
		}
		if strings.Contains(s, echoed[:32]) || strings.Contains(s, "bearer-token-secret") {
			t.Errorf("a secret-looking run reached the error: %q", s)
		}
	}
}
