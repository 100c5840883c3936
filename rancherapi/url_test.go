package rancherapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, base, project, err string
		v3                     bool
	}{
		{in: "http://rancher.example.com", base: "http://rancher.example.com/v2-beta/"},
		{in: "http://rancher.example.com/", base: "http://rancher.example.com/v2-beta/"},
		{in: "https://rancher.example.com:8443/v1", base: "https://rancher.example.com:8443/v1/"},
		{in: "http://rancher.example.com/v2-beta/", base: "http://rancher.example.com/v2-beta/"},
		{in: "http://rancher.example.com/v1/projects/1a10", base: "http://rancher.example.com/v1/projects/1a10/", project: "1a10"},
		{in: "http://rancher.example.com/v2-beta/projects/1a5/", base: "http://rancher.example.com/v2-beta/projects/1a5/", project: "1a5"},
		{in: "http://proxy.example.com/rancher/v2-beta/projects/1a5", base: "http://proxy.example.com/rancher/v2-beta/projects/1a5/", project: "1a5"},
		{in: " http://rancher.example.com/v1?x=1 ", base: "http://rancher.example.com/v1/"},
		{in: "http://rancher.example.com/v1?", base: "http://rancher.example.com/v1/"}, // found by FuzzParseURL
		{in: "https://rancher.example.com/v3", base: "https://rancher.example.com/v3/", v3: true},
		{in: "https://rancher.example.com/v3/project/c-abcde:p-fghij", base: "https://rancher.example.com/v3/project/c-abcde:p-fghij/", project: "c-abcde:p-fghij", v3: true},
		{in: "https://rancher.example.com/v3/projects/local:p-x1/", base: "https://rancher.example.com/v3/project/local:p-x1/", project: "local:p-x1", v3: true},
		{in: "https://rancher.example.com/v3/clusters/c-abcde", err: "not a Rancher 2.x API path"},
		{in: "https://rancher.example.com/k8s/clusters/c-abcde", err: "is a Kubernetes API"},
		{in: "https://rancher.example.com:6443/api", err: "is a Kubernetes API"},
		{in: "https://rancher.example.com/dashboard/c/local/explorer", err: "is the Rancher UI"},
		{in: "rancher.example.com/v1", err: "scheme must be http or https"},
		{in: "http:///v1", err: "no host"},
		{in: "http://user:pw@rancher.example.com/v1", err: "must not hold credentials"},
		{in: "http://rancher.example.com/v2-beta/projects/1a5/registries", err: "not a Rancher 1.x API path"},
		{in: "http://rancher.example.com/v2-beta/stacks", err: "not a Rancher 1.x API path"},
		{in: "http://rancher.example.com/%zz", err: "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, err := ParseURL(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseURL(%q) error = %v, want %q", tt.in, err, tt.err)
				}
				if strings.Contains(err.Error(), "pw@") {
					t.Errorf("error leaks userinfo: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Base.String(); got != tt.base {
				t.Errorf("base = %q, want %q", got, tt.base)
			}
			if a.Project != tt.project || a.Rancher2 != tt.v3 {
				t.Errorf("project, rancher2 = %q, %v, want %q, %v", a.Project, a.Rancher2, tt.project, tt.v3)
			}
		})
	}
}

func TestClient_WithProject(t *testing.T) {
	t.Parallel()
	c, err := NewCattle("http://rancher.example.com/v1/projects/1a5", "a", "s", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.WithProject("1a7").BaseURL(), "http://rancher.example.com/v1/projects/1a7/"; got != want {
		t.Errorf("WithProject base = %q, want %q", got, want)
	}
	c2, _ := NewCattle("http://rancher.example.com", "a", "s", nil)
	if got, want := c2.WithProject("1a9").BaseURL(), "http://rancher.example.com/v2-beta/projects/1a9/"; got != want {
		t.Errorf("WithProject base = %q, want %q", got, want)
	}
	if c.BaseURL() != "http://rancher.example.com/v1/projects/1a5/" {
		t.Errorf("WithProject changed the original client: %s", c.BaseURL())
	}
}

// TestClient_URLForms sends a real request for every CATTLE_URL form users write
// and checks the path it lands on.
func TestClient_URLForms(t *testing.T) {
	t.Parallel()
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path)
		serve(http.StatusOK, []byte(`{"type":"collection","data":[]}`))(w, r)
	}))
	t.Cleanup(srv.Close)
	forms := map[string]string{
		"":                       "/v2-beta/registries",
		"/":                      "/v2-beta/registries",
		"/v1":                    "/v1/registries",
		"/v2-beta":               "/v2-beta/registries",
		"/v1/projects/1a10":      "/v1/projects/1a10/registries",
		"/v2-beta/projects/1a5/": "/v2-beta/projects/1a5/registries",
		"/prefix/v1":             "/prefix/v1/registries",
	}
	for form, want := range forms {
		got = nil
		c, err := NewCattle(srv.URL+form, testAccess, testSecret, nil)
		if err != nil {
			t.Fatalf("%q: %v", form, err)
		}
		if _, err := c.ListRegistries(t.Context()); err != nil {
			t.Fatalf("%q: %v", form, err)
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("CATTLE_URL …%s requested %v, want %s", form, got, want)
		}
	}
}
