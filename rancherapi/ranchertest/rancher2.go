package ranchertest

import (
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// TokenInfo is what Rancher 2.x knows of an API key beyond its secret: the
// Kubernetes user its requests through /k8s/clusters/<id> act as, the cluster
// it is scoped to, and when it expires.
type TokenInfo struct {
	// KubeUser is the user the Kubernetes proxy impersonates (default: the
	// access key), in KubeGroups plus system:authenticated.
	KubeUser   string
	KubeGroups []string
	// ClusterID scopes the token to one cluster's proxy, as kubeconfig tokens
	// are; "" is unscoped.
	ClusterID string
	// ExpiresAt is when the token expires; zero never.
	ExpiresAt time.Time
}

// rancher2 is the part of the stand-in that Rancher 2.12+ clients need: the
// server version, tokens and the Kubernetes proxy.
type rancher2 struct {
	mu      sync.Mutex
	version string
	tokens  map[string]TokenInfo // by access key
	kube    map[string]*httputil.ReverseProxy
}

// SetServerVersion sets what /v3/settings/server-version answers ("" = 404,
// as before the setting existed).
func (s *Server) SetServerVersion(v string) {
	s.r2.mu.Lock()
	defer s.r2.mu.Unlock()
	s.r2.version = v
}

// SetToken records what Rancher knows about the key with this access key.
func (s *Server) SetToken(access string, info TokenInfo) {
	s.r2.mu.Lock()
	defer s.r2.mu.Unlock()
	if s.r2.tokens == nil {
		s.r2.tokens = map[string]TokenInfo{}
	}
	s.r2.tokens[access] = info
}

// SetKubeProxy serves /k8s/clusters/<clusterID>/… by forwarding to a real
// Kubernetes API server at target through rt (which authenticates as a user
// allowed to impersonate), impersonating the key's TokenInfo.KubeUser as
// Rancher does for the local cluster: the apiserver's RBAC decides.
func (s *Server) SetKubeProxy(clusterID string, target *url.URL, rt http.RoundTripper) {
	p := &httputil.ReverseProxy{
		Transport: rt,
		Rewrite: func(pr *httputil.ProxyRequest) {
			prefix := "/k8s/clusters/" + clusterID
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			pr.Out.URL.Path = strings.TrimSuffix(target.Path, "/") + strings.TrimPrefix(pr.In.URL.Path, prefix)
			pr.Out.URL.RawPath = ""
			pr.Out.Host = target.Host
		},
	}
	s.r2.mu.Lock()
	defer s.r2.mu.Unlock()
	if s.r2.kube == nil {
		s.r2.kube = map[string]*httputil.ReverseProxy{}
	}
	s.r2.kube[clusterID] = p
}

func (s *Server) tokenInfo(access string) TokenInfo {
	s.r2.mu.Lock()
	defer s.r2.mu.Unlock()
	return s.r2.tokens[access]
}

// serveRancher2 answers /v3/settings/<name> and /v3/tokens/<name>; it reports
// false for any other /v3 path.
func (s *Server) serveRancher2(w http.ResponseWriter, r *http.Request, key Key, rest []string) bool {
	if len(rest) != 2 || r.Method != http.MethodGet {
		return false
	}
	switch rest[0] {
	case "settings":
		s.r2.mu.Lock()
		v := s.r2.version
		s.r2.mu.Unlock()
		if rest[1] != "server-version" || v == "" {
			writeNormanError(w, http.StatusNotFound, "NotFound", "settings.management.cattle.io \""+rest[1]+"\" not found", "")
			return true
		}
		writeNormanJSON(w, http.StatusOK, map[string]any{"id": rest[1], "type": "setting", "name": rest[1], "value": v,
			"baseType": "setting", "links": map[string]any{"self": "http://" + r.Host + "/v3/settings/" + rest[1]}})
		return true
	case "tokens":
		if rest[1] != key.Access { // another user's token: Rancher hides it
			writeNormanError(w, http.StatusNotFound, "NotFound", "tokens.management.cattle.io \""+rest[1]+"\" not found", "")
			return true
		}
		info := s.tokenInfo(key.Access)
		exp := ""
		if !info.ExpiresAt.IsZero() {
			exp = info.ExpiresAt.UTC().Format(time.RFC3339)
		}
		writeNormanJSON(w, http.StatusOK, map[string]any{"id": key.Access, "type": "token", "name": key.Access,
			"expiresAt": exp, "expired": !info.ExpiresAt.IsZero() && time.Now().After(info.ExpiresAt),
			"clusterId": info.ClusterID, "userId": "u-" + key.Access, "token": nil})
		return true
	}
	return false
}

// serveKube forwards /k8s/clusters/<id>/… to the API server set for <id>, as
// the key's user, or answers as Rancher does when it cannot.
func (s *Server) serveKube(w http.ResponseWriter, r *http.Request, key Key) {
	rest := strings.TrimPrefix(r.URL.Path, "/k8s/clusters/")
	cluster, _, _ := strings.Cut(rest, "/")
	info := s.tokenInfo(key.Access)
	s.r2.mu.Lock()
	p := s.r2.kube[cluster]
	s.r2.mu.Unlock()
	switch {
	case info.ClusterID != "" && info.ClusterID != cluster:
		// Rancher's token authenticator: "clusterID does not match", answered as a 401.
		writeAuthError(w)
		return
	case p == nil:
		writeNormanError(w, http.StatusNotFound, "NotFound", "clusters.management.cattle.io \""+cluster+"\" not found", "")
		return
	}
	user := info.KubeUser
	if user == "" {
		user = key.Access
	}
	out := r.Clone(r.Context())
	out.Header.Del("Authorization")
	out.Header.Del("Impersonate-User")
	out.Header.Del("Impersonate-Group")
	out.Header.Set("Impersonate-User", user)
	for _, g := range append([]string{"system:authenticated"}, info.KubeGroups...) {
		out.Header.Add("Impersonate-Group", g)
	}
	p.ServeHTTP(w, out)
}

// writeAuthError is Rancher 2.x's auth filter's own 401 shape, status a string.
func writeAuthError(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(`{"type":"error","status":"401","message":"Unauthorized 401: must authenticate"}`))
}
