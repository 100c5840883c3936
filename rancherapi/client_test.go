package rancherapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	testAccess = "test-access-key"
	testSecret = "test-secret-key-DO-NOT-LEAK"
)

// setup returns a client for <server>/v2-beta/projects/1a5 and the mux behind it.
func setup(t *testing.T) (*Cattle, *http.ServeMux, *httptest.Server) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := NewCattle(srv.URL+"/v2-beta/projects/1a5", testAccess, testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, mux, srv
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func serve(status int, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}
}

func testMethod(t *testing.T, r *http.Request, want string) {
	t.Helper()
	if got := r.Method; got != want {
		t.Errorf("method = %s, want %s", got, want)
	}
}

func testAuth(t *testing.T, r *http.Request) {
	t.Helper()
	u, p, ok := r.BasicAuth()
	if !ok || u != testAccess || p != testSecret {
		t.Errorf("basic auth = %q/%q/%v, want the key pair", u, p, ok)
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		t.Errorf("Accept = %q", got)
	}
}

func testJSONBody(t *testing.T, r *http.Request, want map[string]any) {
	t.Helper()
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	var got map[string]any
	if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
		t.Fatalf("request body: %v", err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("request body (-want +got):\n%s", d)
	}
}

func TestClient_ListRegistries(t *testing.T) {
	t.Parallel()
	c, mux, _ := setup(t)
	mux.HandleFunc("/v2-beta/projects/1a5/registries", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodGet)
		testAuth(t, r)
		if got := r.URL.Query().Get("limit"); got != "3000" {
			t.Errorf("limit = %q, want the largest page Cattle serves", got)
		}
		serve(http.StatusOK, fixture(t, "v2beta-registries.json"))(w, r)
	})
	got, err := c.ListRegistries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []Registry{
		{ID: "1sp1", ServerAddress: "index.docker.io", AccountID: "1a5", State: "active"},
		{ID: "1sp2", ServerAddress: "111122223333.dkr.ecr.us-east-1.amazonaws.com", AccountID: "1a5", State: "active"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ListRegistries (-want +got):\n%s", d)
	}
}

// TestClient_ListRegistries_Pages follows pagination.next across three pages. The
// links name another host (as Cattle behind a proxy does): only path and query
// are followed, so the key never goes elsewhere.
func TestClient_ListRegistries_Pages(t *testing.T) {
	t.Parallel()
	c, mux, _ := setup(t)
	var markers []string
	mux.HandleFunc("/v2-beta/projects/1a5/registries", func(w http.ResponseWriter, r *http.Request) {
		testAuth(t, r)
		m := r.URL.Query().Get("marker")
		markers = append(markers, m)
		next, id := "", map[string]string{"": "1sp1", "m1": "1sp2", "m2": "1sp3"}[m]
		if m != "m2" {
			next = fmt.Sprintf(`http:\/\/rancher.example.com:8080\/v2-beta\/projects\/1a5\/registries?limit=3000&marker=m%d`, len(markers))
		}
		body := fmt.Sprintf(`{"type":"collection","data":[{"id":%q,"serverAddress":"h%s","state":"active"}],"pagination":{"next":%s,"partial":%v}}`,
			id, id, jsonOrNull(next), next != "")
		serve(http.StatusOK, []byte(body))(w, r)
	})
	got, err := c.ListRegistries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[2].ID != "1sp3" {
		t.Errorf("got %+v, want 3 registries ending in 1sp3", got)
	}
	if d := cmp.Diff([]string{"", "m1", "m2"}, markers); d != "" {
		t.Errorf("markers (-want +got):\n%s", d)
	}
}

func jsonOrNull(s string) string {
	if s == "" {
		return "null"
	}
	return `"` + s + `"`
}

func TestClient_ListRegistries_EndlessPagination(t *testing.T) {
	t.Parallel()
	c, mux, _ := setup(t)
	mux.HandleFunc("/v2-beta/projects/1a5/registries", serve(http.StatusOK,
		[]byte(`{"type":"collection","data":[],"pagination":{"next":"/v2-beta/projects/1a5/registries?marker=m0","partial":true}}`)))
	_, err := c.ListRegistries(t.Context())
	if err == nil || !strings.Contains(err.Error(), "pagination does not end") {
		t.Fatalf("err = %v, want pagination error", err)
	}
}

func TestClient_ListRegistryCredentials(t *testing.T) {
	t.Parallel()
	c, mux, _ := setup(t)
	mux.HandleFunc("/v2-beta/projects/1a5/registrycredentials", func(w http.ResponseWriter, r *http.Request) {
		testMethod(t, r, http.MethodGet)
		if got := r.URL.Query().Get("registryId"); got != "1sp2" {
			t.Errorf("registryId filter = %q", got)
		}
		serve(http.StatusOK, fixture(t, "v2beta-registrycredentials-by-registryid.json"))(w, r)
	})
	got, err := c.ListRegistryCredentials(t.Context(), "1sp2")
	if err != nil {
		t.Fatal(err)
	}
	want := []RegistryCredential{{ID: "1c12", RegistryID: "1sp2", PublicValue: "AWS", State: "active", AccountID: "1a5"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ListRegistryCredentials (-want +got):\n%s", d)
	}
}

// A server that ignores the registryId filter must not make us write another
// registry's credential.
func TestClient_ListRegistryCredentials_IgnoredFilter(t *testing.T) {
	t.Parallel()
	c, mux, _ := setup(t)
	mux.HandleFunc("/v2-beta/projects/1a5/registrycredentials", serve(http.StatusOK, []byte(`{"type":"collection","data":[
		{"id":"1c1","registryId":"1sp1","publicValue":"someone","state":"active"},
		{"id":"1c12","registryId":"1sp2","publicValue":"AWS","state":"active"}]}`)))
	got, err := c.ListRegistryCredentials(t.Context(), "1sp2")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != "1c12" {
		t.Errorf("got %+v, want only 1c12", got)
	}
}

func TestClient_CreateRegistryCredential(t *testing.T) {
	t.Parallel()
	c, mux, _ := setup(t)
	mux.HandleFunc("POST /v2-beta/projects/1a5/registrycredentials", func(w http.ResponseWriter, r *http.Request) {
		testAuth(t, r)
		testJSONBody(t, r, map[string]any{"registryId": "1sp2", "publicValue": "AWS", "secretValue": "pw-1", "email": "e@example.com"})
		serve(http.StatusCreated, []byte(`{"id":"1c13","type":"registryCredential","registryId":"1sp2","publicValue":"AWS","secretValue":"pw-1","state":"registering"}`))(w, r)
	})
	got, err := c.CreateRegistryCredential(t.Context(), CredentialInput{RegistryID: "1sp2", PublicValue: "AWS", SecretValue: "pw-1", Email: "e@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (RegistryCredential{ID: "1c13", RegistryID: "1sp2", PublicValue: "AWS", State: "registering"}); got != want {
		t.Errorf("got %+v, want %+v (the echoed secret is not kept)", got, want)
	}
}

func TestClient_UpdateRegistryCredential(t *testing.T) {
	t.Parallel()
	c, mux, _ := setup(t)
	mux.HandleFunc("PUT /v2-beta/projects/1a5/registrycredentials/1c12", func(w http.ResponseWriter, r *http.Request) {
		testAuth(t, r)
		// registryId cannot be updated and is not sent (docs/rancher-api.md#updates).
		testJSONBody(t, r, map[string]any{"publicValue": "AWS", "secretValue": "pw-2", "email": "e@example.com"})
		serve(http.StatusOK, []byte(`{"id":"1c12","type":"registryCredential","registryId":"1sp2","publicValue":"AWS","secretValue":null,"state":"active"}`))(w, r)
	})
	got, err := c.UpdateRegistryCredential(t.Context(), "1c12", CredentialInput{RegistryID: "1sp2", PublicValue: "AWS", SecretValue: "pw-2", Email: "e@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "1c12" {
		t.Errorf("got %+v", got)
	}
}

func TestClient_CreateRegistry(t *testing.T) {
	t.Parallel()
	c, mux, _ := setup(t)
	mux.HandleFunc("POST /v2-beta/projects/1a5/registries", func(w http.ResponseWriter, r *http.Request) {
		testJSONBody(t, r, map[string]any{"serverAddress": "444455556666.dkr.ecr.us-east-1.amazonaws.com", "description": "d"})
		serve(http.StatusCreated, []byte(`{"id":"1sp3","type":"registry","serverAddress":"444455556666.dkr.ecr.us-east-1.amazonaws.com","state":"registering"}`))(w, r)
	})
	got, err := c.CreateRegistry(t.Context(), "444455556666.dkr.ecr.us-east-1.amazonaws.com", "d")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "1sp3" || got.State != "registering" {
		t.Errorf("got %+v", got)
	}
}

func TestClient_CreateRegistry_ServerAddressUsed(t *testing.T) {
	t.Parallel()
	c, mux, _ := setup(t)
	mux.HandleFunc("POST /v2-beta/projects/1a5/registries", serve(http.StatusBadRequest, fixture(t, "v2beta-error-400-server-address-used.json")))
	_, err := c.CreateRegistry(t.Context(), "h", "")
	if !HasCode(err, "ServerAddressUsed") {
		t.Fatalf("err = %v, want ServerAddressUsed", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.StatusCode != 400 || e.Temporary() {
		t.Errorf("err = %#v, want a permanent 400", e)
	}
}

// TestClient_Errors checks every error class a user can meet: what the message
// says, whether it is worth retrying, and that no secret is in it.
func TestClient_Errors(t *testing.T) {
	t.Parallel()
	item := `{"id":"1sp1","serverAddress":"h","description":"` + strings.Repeat("x", 990) + `"},`
	huge := append([]byte(`{"type":"collection","data":[`), []byte(strings.Repeat(item, (1<<20)/len(item)+10))...)
	huge = append(huge, []byte(`{"id":"x"}]}`)...)
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		wantMsg   []string
		status    int
		temporary bool
		notFound  bool
	}{
		{name: "Unauthorized", handler: serve(401, fixture(t, "v2beta-error-401.json")), status: 401,
			wantMsg: []string{"401 Unauthorized", "access key and secret key"}},
		{name: "Forbidden", handler: serve(403, []byte(`{"type":"error","status":403,"code":"Forbidden","message":"Forbidden"}`)), status: 403,
			wantMsg: []string{"403 Forbidden", "environment API key", "io.rancher.container.agent.role=environment"}},
		{name: "NotFound", handler: serve(404, []byte(`{"type":"error","status":404,"code":"Not Found","message":"Not Found"}`)), status: 404, notFound: true,
			wantMsg: []string{"404 Not Found"}},
		{name: "Conflict", handler: serve(409, []byte(`{"type":"error","status":409,"code":"Conflict","message":"Conflict"}`)), status: 409, temporary: true,
			wantMsg: []string{"409 Conflict"}},
		{name: "MissingEmail", handler: serve(422, fixture(t, "v1-error-422-missing-required-email.json")), status: 422,
			wantMsg: []string{"422 MissingRequired (field email)"}},
		{name: "TooManyRequests", handler: serve(429, nil), status: 429, temporary: true, wantMsg: []string{"429 Too Many Requests"}},
		{name: "ServerError", handler: serve(500, []byte(`{"type":"error","status":500,"code":"Internal Server Error"}`)), status: 500, temporary: true,
			wantMsg: []string{"500 Internal Server Error"}},
		{name: "BadGatewayHTML", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			_, _ = io.WriteString(w, "<html>bad gateway "+testSecret+"</html>")
		}, status: 502, temporary: true, wantMsg: []string{"502 Bad Gateway"}},
		{name: "GarbageJSON", handler: serve(200, []byte(`{"type":"collection","data":[{"id":`)), status: 200,
			wantMsg: []string{"not Rancher API JSON", "invalid JSON"}},
		{name: "UIPage", handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "<!DOCTYPE html><html>Rancher</html>")
		}, status: 200, wantMsg: []string{"does not look like a Rancher API (it answered 200 with an HTML page)", "Rancher 2.x at https://<rancher>/v3"}},
		{name: "NotACollection", handler: serve(200, []byte(`{"id":"1a5","type":"project"}`)), status: 200,
			wantMsg: []string{`answer is a "project", not a collection`}},
		{name: "HugeBody", handler: serve(200, huge), status: 200, wantMsg: []string{"larger than 1 MiB across its pages"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, mux, _ := setup(t)
			c.listBytes = 1 << 20 // HugeBody: the bound's handling, not its size (TestClient_ListBounded)
			mux.HandleFunc("/v2-beta/projects/1a5/registries", tt.handler)
			_, err := c.ListRegistries(t.Context())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not say %q", err, m)
				}
			}
			if e.StatusCode != tt.status || e.Temporary() != tt.temporary || errors.Is(err, ErrNotFound) != tt.notFound {
				t.Errorf("status=%d temporary=%v notFound=%v, want %d %v %v", e.StatusCode, e.Temporary(), errors.Is(err, ErrNotFound), tt.status, tt.temporary, tt.notFound)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error leaks the secret key: %v", err)
			}
		})
	}
}

func TestClient_CanceledContext(t *testing.T) {
	t.Parallel()
	c, mux, _ := setup(t)
	mux.HandleFunc("/v2-beta/projects/1a5/registries", serve(200, []byte(`{"type":"collection","data":[]}`)))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.ListRegistries(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// A server that never answers is cut by the client's timeout, not waited on.
func TestClient_Timeout(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(block); srv.Close() })
	c, err := NewCattle(srv.URL+"/v1", testAccess, testSecret, &http.Client{Timeout: 50_000_000}) // 50ms
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListRegistries(t.Context())
	var e *Error
	if !errors.As(err, &e) || !e.Temporary() || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("err = %v, want a temporary timeout error", err)
	}
}

func TestClient_ServerGone(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c, err := NewCattle(srv.URL+"/v2-beta", testAccess, testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListRegistries(t.Context())
	var e *Error
	if !errors.As(err, &e) || !e.Temporary() || e.StatusCode != 0 {
		t.Fatalf("err = %v, want a temporary transport error", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q does not say the connection was refused", err)
	}
}

func TestCredentialInput_String(t *testing.T) {
	t.Parallel()
	in := CredentialInput{RegistryID: "1sp2", PublicValue: "AWS", SecretValue: "s3cr3t", Email: "e"}
	for _, s := range []string{fmt.Sprint(in), fmt.Sprintf("%v %+v %#v %s", in, in, in, in)} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("formatted input leaks the secret: %s", s)
		}
	}
}

// BenchmarkClient_ListRegistries decodes one Cattle page of 1,000 registries in
// the real shape (escaped slashes, links, actions): the per-registry cost of a
// scope's listing.
func BenchmarkClient_ListRegistries(b *testing.B) {
	var items []string
	for i := range 1000 {
		self := fmt.Sprintf(`http:\/\/rancher.example.com:8080\/v2-beta\/projects\/1a5\/registries\/1sp%d`, i)
		items = append(items, fmt.Sprintf(`{"id":"1sp%d","type":"registry","links":{"self":"%s","credentials":"%s\/credentials"},`+
			`"actions":{"update":"%s\/?action=update"},"baseType":"storagePool","accountId":"1a5","kind":"registry",`+
			`"name":null,"description":null,"serverAddress":"registry-%d.example.com:5000","state":"active","transitioning":"no",`+
			`"created":"2017-06-01T15:04:05Z","createdTS":1496329445000,"uuid":"14a6d40d-7367-41a4-9701-e4d2eda88b96"}`, i, self, self, self, i))
	}
	body := []byte(`{"type":"collection","resourceType":"registry","data":[` + strings.Join(items, ",") + `],"pagination":{"next":null,"limit":3000,"partial":false}}`)
	srv := httptest.NewServer(serve(200, body))
	b.Cleanup(srv.Close)
	c, err := NewCattle(srv.URL+"/v2-beta/projects/1a5", testAccess, testSecret, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		regs, err := c.ListRegistries(b.Context())
		if err != nil || len(regs) != 1000 {
			b.Fatal(err)
		}
	}
}
