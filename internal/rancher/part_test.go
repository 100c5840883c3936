package rancher

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
)

// stand-in serves rs until the test ends and returns its URL.
func standIn(t *testing.T, rs *ranchertest.Server) string {
	t.Helper()
	srv := httptest.NewServer(rs)
	t.Cleanup(srv.Close)
	return srv.URL
}

// The scopes of each way of naming them, with their names and groups.
func TestBuild_Scopes(t *testing.T) {
	t.Parallel()
	r1 := ranchertest.New(ranchertest.Key{Access: "ak", Secret: "sk", Project: "1a5", Projects: []string{"1a5", "1a7"}})
	r1.AddProject("1a5")
	url1 := standIn(t, r1)
	r2 := ranchertest.New(ranchertest.Key{Access: "token-x", Secret: "sk", Projects: []string{"*"}})
	r2.AddProject("c-abcde:p-fghij")
	r2.AddSystemProject("local:p-system")
	url2 := standIn(t, r2)
	bearer := map[string]string{"CATTLE_URL": url2 + "/v3", "CATTLE_SECRET_KEY": "token-x:sk"}

	for _, tt := range []struct {
		name       string
		env        map[string]string
		scopes     string // the part's static scopes, name/group
		discovered string // what Discover finds, name/group
	}{
		{"Rancher1Environment", map[string]string{"CATTLE_URL": url1 + "/v2-beta/projects/1a5", "CATTLE_ACCESS_KEY": "ak", "CATTLE_SECRET_KEY": "sk"}, "1a5/", ""},
		{"Rancher1Unscoped", map[string]string{"CATTLE_URL": url1 + "/v2-beta", "CATTLE_ACCESS_KEY": "ak", "CATTLE_SECRET_KEY": "sk"}, "", "1a5/"},
		{"Rancher1Listed", map[string]string{"CATTLE_URL": url1 + "/v1", "CATTLE_ACCESS_KEY": "ak", "CATTLE_SECRET_KEY": "sk", "RANCHER_PROJECTS": "1a5,1a7"}, "1a5/ 1a7/", ""},
		{"Rancher2Project", with(bearer, "CATTLE_URL", url2+"/v3/project/c-abcde:p-fghij"), "c-abcde:p-fghij/", ""},
		{"Rancher2All", with(bearer, "RANCHER_PROJECTS", "all"), "", "c-abcde:p-fghij/rancher-projects"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := values(t, nil, tt.env)
			p, err := Kind().Build(v, deps(""))
			if err != nil || v.Err() != nil || p == nil {
				t.Fatalf("build: %v, %v", err, v.Err())
			}
			var got []string
			for _, sc := range p.Scopes {
				got = append(got, sc.Name+"/"+sc.Group)
			}
			if strings.Join(got, " ") != tt.scopes {
				t.Errorf("scopes %v, want %s", got, tt.scopes)
			}
			got = nil
			if p.Discover != nil {
				scopes, err := p.Discover(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				for _, sc := range scopes {
					got = append(got, sc.Name+"/"+sc.Group)
				}
			}
			if strings.Join(got, " ") != tt.discovered {
				t.Errorf("discovered %v, want %s", got, tt.discovered)
			}
		})
	}
}

// RANCHER_PROJECTS=all that finds nothing says so, naming the setting.
func TestBuild_AllFindsNothing(t *testing.T) {
	t.Parallel()
	rs := ranchertest.New(ranchertest.Key{Access: "token-x", Secret: "sk", Projects: []string{"*"}})
	rs.AddSystemProject("local:p-system")
	v := values(t, nil, map[string]string{"CATTLE_URL": standIn(t, rs) + "/v3", "CATTLE_SECRET_KEY": "token-x:sk", "RANCHER_PROJECTS": "all"})
	p, err := Kind().Build(v, deps(""))
	if err != nil || v.Err() != nil {
		t.Fatal(err, v.Err())
	}
	if got := p.Empty(); got != "" {
		t.Errorf("Empty before any discovery = %q", got)
	}
	if scopes, err := p.Discover(t.Context()); err != nil || len(scopes) != 0 {
		t.Fatalf("discover: %v, %v", scopes, err)
	}
	if got := p.Empty(); !strings.HasPrefix(got, "RANCHER_PROJECTS=all: the API key sees no active project") || !strings.Contains(got, "System project") {
		t.Errorf("Empty = %q", got)
	}
}

// The start-up line's Rancher fields: the URL as used (no user information,
// query or fragment), what Rancher 2.x creates unasked.
func TestBuild_Fields(t *testing.T) {
	t.Parallel()
	v := values(t, nil, map[string]string{"CATTLE_URL": "https://rancher.example.com/v3/project/c-abcde:p-fghij?token=t-DO-NOT-LEAK", "CATTLE_SECRET_KEY": "token-x:sk"})
	p, err := Kind().Build(v, deps(""))
	if err != nil || v.Err() != nil {
		t.Fatal(err, v.Err())
	}
	if p.Fields["cattle_url"] != "https://rancher.example.com/v3/project/c-abcde:p-fghij/" || p.Fields["missing_credentials"] != "created in every project, whatever AUTO_CREATE says" {
		t.Errorf("fields = %v", p.Fields)
	}
	v = values(t, nil, minimal())
	if p, err := Kind().Build(v, deps("")); err != nil || p.Fields["missing_credentials"] != nil {
		t.Errorf("a Rancher 1.x start-up line says Rancher 2.x creates credentials: %v, %v", p.Fields, err)
	}
}
