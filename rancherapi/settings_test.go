package rancherapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
)

func TestParseServerVersion(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		raw          string
		major, minor int
		dev, err     bool
		atLeast212   bool
	}{
		{raw: "v2.12.3", major: 2, minor: 12, atLeast212: true},
		{raw: "2.11.4", major: 2, minor: 11},
		{raw: "v2.13.0-rc1", major: 2, minor: 13, atLeast212: true},
		{raw: "v2.9.10", major: 2, minor: 9},
		{raw: "v2.15.0", major: 2, minor: 15, atLeast212: true},
		{raw: "v3.0.0", major: 3, atLeast212: true},
		{raw: "v2.11-8f3a9c1-head", major: 2, minor: 11, dev: true},
		{raw: "dev", dev: true, atLeast212: true},
		{raw: "master-head", dev: true, atLeast212: true},
		{raw: " v2.12.0 ", major: 2, minor: 12, atLeast212: true},
		{raw: "", err: true},
		{raw: "latest", err: true},
		{raw: "v2", err: true},
	} {
		v, err := rancherapi.ParseServerVersion(tc.raw)
		if (err != nil) != tc.err {
			t.Errorf("ParseServerVersion(%q) error = %v, want error %v", tc.raw, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		if v.Major != tc.major || v.Minor != tc.minor || v.Dev != tc.dev || v.AtLeast(2, 12) != tc.atLeast212 {
			t.Errorf("ParseServerVersion(%q) = %+v (AtLeast 2.12 %v), want %d.%d dev %v AtLeast %v",
				tc.raw, v, v.AtLeast(2, 12), tc.major, tc.minor, tc.dev, tc.atLeast212)
		}
	}
}

func TestClient_ServerVersionAndToken(t *testing.T) {
	t.Parallel()
	rs := ranchertest.New(ranchertest.Key{Access: "token-abcde", Secret: "s3cr3t-value", Projects: []string{"*"}})
	rs.SetServerVersion("v2.12.3")
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	rs.SetToken("token-abcde", ranchertest.TokenInfo{ClusterID: "c-other", ExpiresAt: exp})
	srv := httptest.NewServer(rs)
	t.Cleanup(srv.Close)

	// The bearer form: the whole token as the secret key.
	c, err := rancherapi.NewClient(srv.URL+"/v3", "", "token-abcde:s3cr3t-value", nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.GetServerVersion(t.Context())
	if err != nil || v != "v2.12.3" {
		t.Fatalf("GetServerVersion = %q, %v", v, err)
	}
	if c.TokenName() != "token-abcde" {
		t.Fatalf("TokenName = %q", c.TokenName())
	}
	tok, err := c.GetAPIToken(t.Context(), c.TokenName())
	if err != nil {
		t.Fatal(err)
	}
	if at, ok := tok.Expiry(); !ok || !at.Equal(exp) || tok.ClusterID != "c-other" {
		t.Errorf("token = %+v", tok)
	}
	if _, err := c.GetAPIToken(t.Context(), "token-zzzzz"); err == nil {
		t.Error("another user's token was readable")
	}

	rs.SetServerVersion("")
	if _, err := c.GetServerVersion(t.Context()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing setting: err = %v, want a 404", err)
	}
}

func TestClient_TokenName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, access, secret, want string }{
		{"https://r.example.com/v3", "token-abcde", "secret", "token-abcde"},
		{"https://r.example.com/v3", "", "token-abcde:secret", "token-abcde"},
		{"https://r.example.com/v3", "", "ext/abcde:secret", ""}, // newer ext tokens: not in /v3/tokens
		{"https://r.example.com/v2-beta", "token-abcde", "secret", ""},
	} {
		c, err := rancherapi.NewClient(tc.url, tc.access, tc.secret, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.TokenName(); got != tc.want {
			t.Errorf("TokenName(%s, %q) = %q, want %q", tc.url, tc.access, got, tc.want)
		}
	}
}

func TestClient_KubeURL(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"https://r.example.com/v3":                         "https://r.example.com/k8s/clusters/local",
		"https://r.example.com/v3/project/c-abcde:p-fghij": "https://r.example.com/k8s/clusters/local",
		"https://r.example.com:8443/rancher/V3/":           "https://r.example.com:8443/rancher/k8s/clusters/local",
	} {
		c, err := rancherapi.NewClient(raw, "token-abcde", "secret", nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.KubeURL("local"); got != want {
			t.Errorf("KubeURL(%s) = %s, want %s", raw, got, want)
		}
	}
}

// The token goes to Rancher's host only, as a bearer token.
func TestClient_KubeTransport(t *testing.T) {
	t.Parallel()
	seen := map[string]string{}
	h := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { seen[name] = r.Header.Get("Authorization") }
	}
	rancher := httptest.NewServer(h("rancher"))
	t.Cleanup(rancher.Close)
	other := httptest.NewServer(h("other"))
	t.Cleanup(other.Close)
	c, err := rancherapi.NewClient(rancher.URL+"/v3", "token-abcde", "s3cr3t-value", nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: c.KubeTransport()}
	for _, u := range []string{c.KubeURL("local") + "/api/v1/namespaces", other.URL + "/api"} {
		resp, err := hc.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if seen["rancher"] != "Bearer token-abcde:s3cr3t-value" || seen["other"] != "" {
		t.Errorf("Authorization seen: %q", seen)
	}

	// CATTLE_URL says https: the same host over plain HTTP gets no token.
	secure, err := rancherapi.NewClient(strings.Replace(rancher.URL, "http://", "https://", 1)+"/v3", "token-abcde", "s3cr3t-value", nil)
	if err != nil {
		t.Fatal(err)
	}
	delete(seen, "rancher")
	resp, err := (&http.Client{Transport: secure.KubeTransport()}).Get(rancher.URL + "/k8s/clusters/local/api")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := seen["rancher"]; got != "" {
		t.Errorf("the token went over plain HTTP to an https CATTLE_URL's host: %q", got)
	}
}

func TestSuggestV3URL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ raw, project, want string }{
		{"https://rancher.example.com", "", "https://rancher.example.com/v3"},
		{"https://rancher.example.com/", "c-abcde:p-fghij", "https://rancher.example.com/v3/project/c-abcde:p-fghij"},
		{"https://rancher.example.com/v2-beta/projects/c-abcde:p-fghij", "c-abcde:p-fghij", "https://rancher.example.com/v3/project/c-abcde:p-fghij"},
		{"https://rancher.example.com/k8s/clusters/local", "", "https://rancher.example.com/v3"},
		{"https://rancher.example.com/dashboard/c/local/explorer", "", "https://rancher.example.com/v3"},
		{"https://example.com/rancher/c-abcde:p-fghij", "c-abcde:p-fghij", "https://example.com/rancher/v3/project/c-abcde:p-fghij"},
		{"https://example.com:8443/rancher/v1", "", "https://example.com:8443/rancher/v3"},
		{"rancher.example.com", "", ""},
	} {
		if got := rancherapi.SuggestV3URL(tc.raw, tc.project); got != tc.want {
			t.Errorf("SuggestV3URL(%q, %q) = %q, want %q", tc.raw, tc.project, got, tc.want)
		}
	}
	if p := rancherapi.Rancher2ProjectIn("https://example.com/rancher/c-abcde:p-fghij"); p != "c-abcde:p-fghij" {
		t.Errorf("Rancher2ProjectIn = %q", p)
	}
}
