package ranchertest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
)

func start(t *testing.T) (*ranchertest.Server, *httptest.Server) {
	t.Helper()
	s := ranchertest.New(ranchertest.Key{Access: "ak", Secret: "sk", Project: "1a5", Projects: []string{"1a5", "1a7"}})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func get(t *testing.T, url string, auth bool, header ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if auth {
		req.SetBasicAuth("ak", "sk")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestServer_Pagination(t *testing.T) {
	t.Parallel()
	s, srv := start(t)
	for i := range 250 {
		s.AddRegistry("1a5", fmt.Sprintf("r%03d.example.com", i), "")
	}
	c, err := rancherapi.NewCattle(srv.URL+"/v2-beta/projects/1a5", "ak", "sk", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.PageSize = 100
	before := s.Requests()
	regs, err := c.ListRegistries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != 250 || regs[249].ServerAddress != "r249.example.com" {
		t.Errorf("got %d registries, want all 250 in id order", len(regs))
	}
	if got := s.Requests() - before; got != 3 {
		t.Errorf("requests = %d, want 3 pages", got)
	}
}

func TestServer_WireShape(t *testing.T) {
	t.Parallel()
	s, srv := start(t)
	reg := s.AddRegistry("1a5", "Host.Example.com", "")
	s.AddCredential("1a5", reg, "AWS", "hidden-secret", "")
	resp, body := get(t, srv.URL+"/v2-beta/projects/1a5/registrycredentials?serverAddress=nomatch", true)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, want := range []string{`"secretValue":null`, `http:\/\/127.0.0.1`, `\/v2-beta\/projects\/1a5\/registrycredentials\/`} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %s: %s", want, body)
		}
	}
	if strings.Contains(body, "hidden-secret") {
		t.Errorf("a list returned the secret")
	}
	// A URL that ends in the project id is the project, not a scope (docs/rancher-api.md#urls-and-scopes).
	if _, body := get(t, srv.URL+"/v2-beta/projects/1a5", true); !strings.Contains(body, `"type":"project"`) {
		t.Errorf("…/projects/1a5 = %s, want the project resource", body)
	}
}

func TestServer_Auth(t *testing.T) {
	t.Parallel()
	_, srv := start(t)
	resp, _ := get(t, srv.URL+"/v2-beta/registries", false)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("no key: %d %q, want 401 with a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	resp, _ = get(t, srv.URL+"/v2-beta/registries", false, "X-API-No-Challenge", "true")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("no key, no challenge: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if resp, _ := get(t, srv.URL+"/v2-beta/projects/1a9/registries", true); resp.StatusCode != 403 {
		t.Errorf("other environment: %d, want 403", resp.StatusCode)
	}
	if resp, _ := get(t, srv.URL+"/v2-beta/projects/1a7/registries", true); resp.StatusCode != 200 {
		t.Errorf("allowed environment: %d, want 200", resp.StatusCode)
	}
}

func TestServer_Validation(t *testing.T) {
	t.Parallel()
	s, srv := start(t)
	reg := s.AddRegistry("1a5", "h.example.com", "")
	v1, _ := rancherapi.NewCattle(srv.URL+"/v1", "ak", "sk", nil)
	v2, _ := rancherapi.NewCattle(srv.URL+"/v2-beta", "ak", "sk", nil)

	_, err := v1.CreateRegistryCredential(t.Context(), rancherapi.CredentialInput{RegistryID: reg, PublicValue: "AWS", SecretValue: "x"})
	if !rancherapi.HasCode(err, "MinLengthExceeded") {
		t.Errorf("v1 create with empty email: %v, want MinLengthExceeded", err)
	}
	if _, err := v2.CreateRegistryCredential(t.Context(), rancherapi.CredentialInput{RegistryID: reg, PublicValue: "AWS", SecretValue: "x"}); err != nil {
		t.Errorf("v2-beta create without email: %v", err)
	}
	_, err = v2.CreateRegistryCredential(t.Context(), rancherapi.CredentialInput{RegistryID: reg, PublicValue: "AWS", SecretValue: strings.Repeat("x", 4097), Email: "e"})
	if !rancherapi.HasCode(err, "MaxLengthExceeded") {
		t.Errorf("4097-char password: %v, want MaxLengthExceeded", err)
	}
	_, err = v2.CreateRegistryCredential(t.Context(), rancherapi.CredentialInput{RegistryID: "1sp999", PublicValue: "AWS", SecretValue: "x", Email: "e"})
	if !rancherapi.HasCode(err, "InvalidReference") {
		t.Errorf("unknown registry: %v, want InvalidReference", err)
	}
	if _, err := v2.CreateRegistry(t.Context(), "H.EXAMPLE.COM", ""); !rancherapi.HasCode(err, "ServerAddressUsed") {
		t.Errorf("duplicate address, other case: %v, want ServerAddressUsed", err)
	}
	if _, err := v2.CreateRegistry(t.Context(), "https://h.example.com", ""); err != nil {
		t.Errorf("same host with a scheme is a different raw address for Cattle: %v", err)
	}
	if _, err := v2.UpdateRegistryCredential(t.Context(), "1c999", rancherapi.CredentialInput{PublicValue: "AWS", SecretValue: "x", Email: "e"}); !rancherapi.HasCode(err, "Not Found") {
		t.Errorf("update of unknown credential: %v, want 404", err)
	}
}

// Rancher 2.x: dockerCredentials across pages, passwords never read back, and
// the auth filter's own 401 shape.
func TestServer_V3(t *testing.T) {
	t.Parallel()
	s := ranchertest.New(ranchertest.Key{Access: "token-ak", Secret: "sk", Projects: []string{"c-a:p-b"}})
	s.AddProject("c-a:p-b")
	s.AddProject("c-a:p-other")
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	for i := range 25 {
		s.AddDockerCredential("c-a:p-b", fmt.Sprintf("cred-%02d", i), map[string]ranchertest.Auth{"h.example.com": {Username: "AWS", Password: "hidden-secret"}})
	}
	c, err := rancherapi.NewNorman(srv.URL+"/v3/project/c-a:p-b", "", "token-ak:sk", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.PageSize = 10
	before := s.Requests()
	got, err := c.ListDockerCredentials(t.Context())
	if err != nil || len(got) != 25 || got[24].Name != "cred-24" {
		t.Fatalf("got %d credentials, %v; want all 25", len(got), err)
	}
	if n := s.Requests() - before; n != 3 {
		t.Errorf("requests = %d, want 3 pages", n)
	}
	if _, body := get(t, srv.URL+"/v3/project/c-a:p-b/dockercredentials", true); strings.Contains(body, "hidden-secret") {
		t.Error("a list returned a password")
	}
	if _, err := c.WithProject("c-a:p-other").ListDockerCredentials(t.Context()); !rancherapi.HasCode(err, "PermissionDenied") {
		t.Errorf("project the key may not see: %v, want 403 PermissionDenied", err)
	}
	if _, err := c.CreateDockerCredential(t.Context(), "cred-00", nil); !rancherapi.HasCode(err, "AlreadyExists") {
		t.Errorf("duplicate name: %v, want 409 AlreadyExists", err)
	}
	bad, _ := rancherapi.NewNorman(srv.URL+"/v3/project/c-a:p-b", "token-ak", "wrong", nil)
	if _, err := bad.ListDockerCredentials(t.Context()); err == nil || !strings.Contains(err.Error(), "401 Unauthorized 401: must authenticate") {
		t.Errorf("wrong key: %v", err)
	}
}
