package ecrtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// ECR Public's GetAuthorizationToken: awsJson 1.1 under the service
// SpencerFrontendService, signed for ecr-public (docs/ecr.md#ecr-public).
const (
	publicTarget = "SpencerFrontendService.GetAuthorizationToken"
	// PublicHost is the registry host an ECR Public token is for.
	PublicHost = "public.ecr.aws"
	// PublicRegion is the one region the stand-in answers ECR Public in, as
	// AWS does; a call signed for another is refused.
	PublicRegion = "us-east-1"
)

// PublicPassword returns the last ECR Public password handed out.
func (s *Server) PublicPassword() string { return s.Password(PublicHost) }

// PublicCalls returns how many ECR Public requests were received.
func (s *Server) PublicCalls() int64 { return s.publicCalls.Load() }

// servePublic answers ECR Public's GetAuthorizationToken: a request with no
// members, signed for ecr-public in us-east-1, answered with one
// authorizationData object.
func (s *Server) servePublic(w http.ResponseWriter, r *http.Request) {
	s.publicCalls.Add(1)
	auth := r.Header.Get("Authorization")
	switch {
	case !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="):
		WriteError(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	case !strings.Contains(auth, "/ecr-public/aws4_request"):
		WriteError(w, http.StatusForbidden, "InvalidSignatureException", "Credential should be scoped to correct service: 'ecr-public'.")
		return
	case !strings.Contains(auth, "/"+PublicRegion+"/ecr-public/"):
		WriteError(w, http.StatusBadRequest, "UnsupportedCommandException", "The action isn't supported in this Region.")
		return
	}
	var in map[string]json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		WriteError(w, http.StatusBadRequest, "SerializationException", "")
		return
	}
	expAt := s.Now().Add(s.Lifetime)
	pw := fmt.Sprintf("ECRTEST-PUBLIC-PASSWORD-%d", s.calls.Load())
	s.mu.Lock()
	s.issued[PublicHost] = pw
	s.expiry[pw] = expAt.Truncate(time.Millisecond)
	s.mu.Unlock()
	WritePublicAnswer(w, expAt, pw)
}

// WritePublicAnswer answers ECR Public's GetAuthorizationToken with a password
// for user AWS expiring at exp: one authorizationData object, expiresAt in
// epoch seconds with milliseconds, no proxyEndpoint. Use it from intercepts.
func WritePublicAnswer(w http.ResponseWriter, exp time.Time, password string) {
	type data struct {
		AuthorizationToken string  `json:"authorizationToken"`
		ExpiresAt          float64 `json:"expiresAt"`
	}
	writeJSON(w, http.StatusOK, struct {
		AuthorizationData data `json:"authorizationData"`
	}{data{base64.StdEncoding.EncodeToString([]byte("AWS:" + password)), float64(exp.UnixMilli()) / 1000}})
}

// IsPublic reports whether a request is ECR Public's GetAuthorizationToken:
// intercepts use it to fail one service and not the other.
func IsPublic(r *http.Request) bool { return r.Header.Get("X-Amz-Target") == publicTarget }
