package rancherapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const v3Project = "c-abcde:p-fghij"

func setupV3(t *testing.T, access string) (*Norman, *http.ServeMux) {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := NewNorman(srv.URL+"/v3/project/"+v3Project, access, testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, mux
}

func TestClient_ListDockerCredentials(t *testing.T) {
	t.Parallel()
	c, mux := setupV3(t, testAccess)
	mux.HandleFunc("GET /v3/project/"+v3Project+"/dockercredentials", func(w http.ResponseWriter, r *http.Request) {
		testAuth(t, r)
		serve(200, fixture(t, "v3-dockercredentials.json"))(w, r)
	})
	got, err := c.ListDockerCredentials(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []DockerCredential{{ID: "p-fghij:ecr-111122223333-us-east-1", Name: "ecr-111122223333-us-east-1", ProjectID: v3Project,
		Registries: map[string]RegistryUsername{"111122223333.dkr.ecr.us-east-1.amazonaws.com": {Username: "AWS"}}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("ListDockerCredentials (-want +got):\n%s", d)
	}
	if h := got[0].Hosts(); len(h) != 1 || h[0] != "111122223333.dkr.ecr.us-east-1.amazonaws.com" {
		t.Errorf("Hosts = %v", h)
	}
}

func TestClient_CreateDockerCredential(t *testing.T) {
	t.Parallel()
	c, mux := setupV3(t, testAccess)
	mux.HandleFunc("POST /v3/project/"+v3Project+"/dockercredentials", func(w http.ResponseWriter, r *http.Request) {
		testJSONBody(t, r, map[string]any{"type": "dockerCredential", "name": "ecr-444455556666-us-east-1",
			"registries": map[string]any{"444455556666.dkr.ecr.us-east-1.amazonaws.com": map[string]any{"username": "AWS", "password": "pw"}}})
		serve(201, []byte(`{"id":"p-fghij:ecr-444455556666-us-east-1","type":"dockerCredential","name":"ecr-444455556666-us-east-1","registries":{"444455556666.dkr.ecr.us-east-1.amazonaws.com":{"username":"AWS"}}}`))(w, r)
	})
	got, err := c.CreateDockerCredential(t.Context(), "ecr-444455556666-us-east-1",
		map[string]RegistryAuth{"444455556666.dkr.ecr.us-east-1.amazonaws.com": {Username: "AWS", Password: "pw"}})
	if err != nil || got.ID != "p-fghij:ecr-444455556666-us-east-1" {
		t.Errorf("got %+v, %v", got, err)
	}
}

func TestClient_UpdateDockerCredential(t *testing.T) {
	t.Parallel()
	c, mux := setupV3(t, "")
	c.secretKey = "token-abcde:" + testSecret // a Rancher 2.x bearer token given whole
	mux.HandleFunc("PUT /v3/project/"+v3Project+"/dockerCredentials/p-fghij:ecr-1", func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer token-abcde:"+testSecret {
			t.Errorf("Authorization = %q, want the bearer token", got)
		}
		// The whole map, every host with its password (docs/rancher-api.md#dockercredential-updates).
		testJSONBody(t, r, map[string]any{"registries": map[string]any{
			"a.example.com": map[string]any{"username": "AWS", "password": "pw-a"},
			"b.example.com": map[string]any{"username": "AWS", "password": "pw-b"}}})
		serve(200, []byte(`{"id":"p-fghij:ecr-1","type":"dockerCredential","name":"ecr-1"}`))(w, r)
	})
	got, err := c.UpdateDockerCredential(t.Context(), "p-fghij:ecr-1", map[string]RegistryAuth{
		"a.example.com": {Username: "AWS", Password: "pw-a"}, "b.example.com": {Username: "AWS", Password: "pw-b"}})
	if err != nil || got.Name != "ecr-1" {
		t.Errorf("got %+v, %v", got, err)
	}
}

func TestClient_V3Errors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, want string
		status     int
		body       []byte
	}{
		{"AuthFilter401", "401 Unauthorized 401: must authenticate (the API key pair was rejected", 401, fixture(t, "v3-error-401-auth-filter.json")},
		{"MissingName422", "422 MissingRequired (field name)", 422, fixture(t, "v3-error-422-missing-required.json")},
		{"PermissionDenied403", "403 PermissionDenied unauthorized (the API key may not act on this environment or project", 403, []byte(`{"baseType":"error","type":"error","status":403,"code":"PermissionDenied","message":"unauthorized"}`)},
		{"ProjectNotFound404", "is CATTLE_URL https://<rancher>/v2-beta (Rancher 1.x) or https://<rancher>/v3", 404, []byte(`{"type":"error","status":404,"code":"NotFound","message":"not found"}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, mux := setupV3(t, testAccess)
			mux.HandleFunc("/", serve(tt.status, tt.body))
			_, err := c.ListDockerCredentials(t.Context())
			var e *Error
			if !errors.As(err, &e) || e.StatusCode != tt.status || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %d saying %q", err, tt.status, tt.want)
			}
		})
	}
}

func TestClient_ListProjects(t *testing.T) {
	t.Parallel()
	c, mux := setupV3(t, testAccess)
	mux.HandleFunc("GET /v3/projects", func(w http.ResponseWriter, r *http.Request) {
		serve(200, []byte(`{"type":"collection","data":[{"id":"c-abcde:p-fghij","name":"Default","state":"active"},{"id":"local:p-x1","name":"System","state":"active"}]}`))(w, r)
	})
	got, err := c.ListProjects(t.Context())
	if err != nil || len(got) != 2 || got[1].ID != "local:p-x1" {
		t.Errorf("ListProjects = %+v, %v", got, err)
	}
}

func TestClient_V3NeedsProject(t *testing.T) {
	t.Parallel()
	c, err := NewNorman("https://rancher.example.com/v3", "a", "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListDockerCredentials(t.Context()); err == nil || !strings.Contains(err.Error(), "need a project") {
		t.Errorf("err = %v", err)
	}
	if got := c.WithProject(v3Project).BaseURL(); got != "https://rancher.example.com/v3/project/"+v3Project+"/" {
		t.Errorf("WithProject = %s", got)
	}
	if _, err := NewNorman("https://rancher.example.com/v1", "a", "s", nil); err == nil || !strings.Contains(err.Error(), "Rancher 1.x") {
		t.Errorf("a Rancher 1.x URL made a dockerCredentials client: err = %v", err)
	}
	if _, err := NewCattle("https://rancher.example.com/v3", "a", "s", nil); err == nil || !strings.Contains(err.Error(), "Rancher 2.x") {
		t.Errorf("a /v3 URL made a Rancher 1.x client: err = %v", err)
	}
}

func TestRegistryAuth_String(t *testing.T) {
	t.Parallel()
	a := RegistryAuth{Username: "AWS", Password: "pw-secret"}
	if s := fmt.Sprintf("%v %+v %#v %s", a, a, a, map[string]RegistryAuth{"h": a}); strings.Contains(s, "pw-secret") {
		t.Errorf("formatted auth leaks the password: %s", s)
	}
}

func TestClient_NamespacedDockerCredentials(t *testing.T) {
	t.Parallel()
	c, mux := setupV3(t, testAccess)
	mux.HandleFunc("GET /v3/project/"+v3Project+"/namespaceddockercredentials", serve(200, []byte(
		`{"type":"collection","data":[{"id":"web:ecr","name":"ecr","namespaceId":"web","registries":{"h.example.com":{"username":"AWS"}}}]}`)))
	mux.HandleFunc("PUT /v3/project/"+v3Project+"/namespacedDockerCredentials/web:ecr", func(w http.ResponseWriter, r *http.Request) {
		testJSONBody(t, r, map[string]any{"registries": map[string]any{"h.example.com": map[string]any{"username": "AWS", "password": "pw"}}})
		serve(200, []byte(`{"id":"web:ecr","type":"namespacedDockerCredential","name":"ecr","namespaceId":"web"}`))(w, r)
	})
	got, err := c.ListNamespacedDockerCredentials(t.Context())
	if err != nil || len(got) != 1 || got[0].NamespaceID != "web" {
		t.Fatalf("list = %+v, %v", got, err)
	}
	if _, err := c.UpdateNamespacedDockerCredential(t.Context(), "web:ecr", map[string]RegistryAuth{"h.example.com": {Username: "AWS", Password: "pw"}}); err != nil {
		t.Fatal(err)
	}
}
