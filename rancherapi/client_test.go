package rancherapi

import (
	"encoding/json"
	"errors"
	"fmt"
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
