package rancherapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Setting is a Rancher 2.x management setting.
type Setting struct {
	ID    string `json:"id"`
	Value string `json:"value"`
}

// GetSetting reads one Rancher 2.x setting, e.g. "server-version".
//
// API: GET /v3/settings/<name>.
func (c *Client) GetSetting(ctx context.Context, name string) (Setting, error) {
	if !c.rancher2 {
		return Setting{}, fmt.Errorf("settings are a Rancher 2.x (/v3) API; %s is Rancher 1.x", sanitizeURL(c.root))
	}
	return send[Setting](ctx, c, http.MethodGet, c.root.JoinPath("settings", url.PathEscape(name)), nil)
}

// GetServerVersion returns Rancher's version as it reports it: "v2.12.3",
// "v2.13.0-rc1", or for a development build "dev" or "master-head".
//
// API: GET /v3/settings/server-version.
func (c *Client) GetServerVersion(ctx context.Context) (string, error) {
	s, err := c.GetSetting(ctx, "server-version")
	return strings.TrimSpace(s.Value), err
}

// ServerVersion is a Rancher server version taken apart.
type ServerVersion struct {
	Raw          string
	Major, Minor int
	// Dev is a development build (dev, master-head, v2.13-<commit>-head): newer
	// than every release.
	Dev bool
}

var versionRE = regexp.MustCompile(`^[vV]?(\d+)\.(\d+)(?:[.-]|$)`)

// ParseServerVersion reads what /v3/settings/server-version holds. A release
// (v2.12.3, 2.12.3, v2.13.0-rc1) gives its major and minor; "dev" and versions
// ending in "-head" are development builds. Anything else is an error.
func ParseServerVersion(raw string) (ServerVersion, error) {
	raw = strings.TrimSpace(raw)
	v := ServerVersion{Raw: raw}
	if m := versionRE.FindStringSubmatch(raw); m != nil {
		v.Major, _ = strconv.Atoi(m[1])
		v.Minor, _ = strconv.Atoi(m[2])
		v.Dev = strings.HasSuffix(strings.ToLower(raw), "-head")
		return v, nil
	}
	low := strings.ToLower(raw)
	if low == "dev" || strings.HasSuffix(low, "-head") || low == "head" {
		v.Dev = true
		return v, nil
	}
	return v, fmt.Errorf("Rancher server version %q is not a version such as v2.12.3", raw)
}

// AtLeast reports whether v is major.minor or later; a development build is.
func (v ServerVersion) AtLeast(major, minor int) bool {
	if v.Dev && v.Major == 0 {
		return true
	}
	return v.Major > major || v.Major == major && v.Minor >= minor
}

// APIToken is the part of a Rancher 2.x API token its owner may read: never
// the secret.
type APIToken struct {
	Name string `json:"name"`
	// ExpiresAt is RFC 3339, or "" for a token that does not expire.
	ExpiresAt string `json:"expiresAt"`
	Expired   bool   `json:"expired"`
	// ClusterID is set for a token scoped to one cluster: it works only for
	// that cluster's /k8s/clusters/<id> proxy.
	ClusterID string `json:"clusterId"`
}

// Expiry returns when the token expires, and false when it does not (or the
// time is unreadable).
func (t APIToken) Expiry() (time.Time, bool) {
	if t.ExpiresAt == "" {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339, t.ExpiresAt)
	return at, err == nil
}

// TokenName is the name of the API token the client authenticates with
// ("token-xxxxx", the access key), or "" when it has none that /v3/tokens
// knows (a newer "ext/<name>" token, a Rancher 1.x key).
func (c *Client) TokenName() string {
	name := c.accessKey
	if name == "" {
		name, _, _ = strings.Cut(c.secretKey, ":")
	}
	if !c.rancher2 || !strings.HasPrefix(name, "token-") || strings.ContainsAny(name, "/?#") {
		return ""
	}
	return name
}

// GetAPIToken reads an API token by name; a user may read their own.
//
// API: GET /v3/tokens/<name>.
func (c *Client) GetAPIToken(ctx context.Context, name string) (APIToken, error) {
	if !c.rancher2 {
		return APIToken{}, fmt.Errorf("tokens are a Rancher 2.x (/v3) API; %s is Rancher 1.x", sanitizeURL(c.root))
	}
	return send[APIToken](ctx, c, http.MethodGet, c.root.JoinPath("tokens", url.PathEscape(name)), nil)
}

// KubeURL is Rancher's proxy to a cluster's Kubernetes API,
// <rancher>/k8s/clusters/<clusterID>, beside the /v3 root (a path prefix in
// front of /v3 is kept). The local cluster is "local".
func (c *Client) KubeURL(clusterID string) string {
	u := *c.root
	p := strings.TrimSuffix(u.Path, "/") // "[/prefix]/v3"
	u.Path = p[:strings.LastIndex(p, "/")] + "/k8s/clusters/" + url.PathEscape(clusterID)
	return u.String()
}

// KubeTransport returns a RoundTripper for Rancher's Kubernetes proxy: the
// client's own transport (TLS settings, proxy from the environment) adding the
// API token as a bearer token, which Rancher's proxy accepts like /v3 does.
// The token goes only to the Rancher host; a request elsewhere is sent without it.
func (c *Client) KubeTransport() http.RoundTripper {
	return &authTransport{c: c, next: c.hc.Transport}
}

// Timeout is the client's HTTP timeout (0: none).
func (c *Client) Timeout() time.Duration { return c.hc.Timeout }

type authTransport struct {
	c    *Client
	next http.RoundTripper
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	// Only to Rancher's own origin (scheme and host): never over plain HTTP
	// when CATTLE_URL says https, never to another host.
	if req.URL.Scheme != t.c.root.Scheme || req.URL.Host != t.c.root.Host || req.Header.Get("Authorization") != "" {
		return next.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	token := t.c.secretKey
	if t.c.accessKey != "" {
		token = t.c.accessKey + ":" + t.c.secretKey
	}
	r.Header.Set("Authorization", "Bearer "+token)
	return next.RoundTrip(r)
}
