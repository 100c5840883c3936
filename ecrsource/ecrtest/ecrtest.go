// Package ecrtest is a local stand-in for the Amazon ECR API's
// GetAuthorizationToken, and ECR Public's, close enough that the real
// aws-sdk-go-v2 clients accept it (docs/ecr.md#a-local-ecr). Tests and --demo
// use it.
package ecrtest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const target = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"

var idPattern = regexp.MustCompile(`^[0-9]{12}$`)

// Server answers GetAuthorizationToken of ECR and of ECR Public (told apart by
// X-Amz-Target, so one server can stand for both endpoints). Each call hands
// out new passwords, as real ECR does. Serve it with httptest.NewServer(s).
type Server struct {
	mu          sync.Mutex
	issued      map[string]string    // registry id (PublicHost for ECR Public) → last password handed out
	expiry      map[string]time.Time // password → the expiresAt it was handed out with
	calls       atomic.Int64
	publicCalls atomic.Int64

	intercept atomic.Pointer[func(http.ResponseWriter, *http.Request) bool]

	// Account is the caller's own registry id, used when a request names none.
	Account string
	// Region goes into proxyEndpoint hosts.
	Region string
	// Lifetime is added to Now for expiresAt; 12h like ECR.
	Lifetime time.Duration
	// Now is the clock; tests replace it.
	Now func() time.Time
}

// New returns a server for the given caller account and region.
func New(account, region string) *Server {
	return &Server{issued: map[string]string{}, expiry: map[string]time.Time{}, Account: account, Region: region, Lifetime: 12 * time.Hour, Now: time.Now}
}

// SetIntercept installs a hook run before every request, after counting it. When
// it returns true it has answered; use it to inject faults (see WriteError).
func (s *Server) SetIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	if f == nil {
		s.intercept.Store(nil)
		return
	}
	s.intercept.Store(&f)
}

// Calls returns how many requests were received.
func (s *Server) Calls() int64 { return s.calls.Load() }

// Password returns the last password handed out for a registry id.
func (s *Server) Password(registryID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued[registryID]
}

// ExpiryOf returns the expiresAt a password was handed out with (zero if never).
func (s *Server) ExpiryOf(password string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expiry[password]
}

// Host returns the registry host of an account in this server's region.
func (s *Server) Host(registryID string) string {
	return fmt.Sprintf("%s.dkr.ecr.%s.amazonaws.com", registryID, s.Region)
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	if f := s.intercept.Load(); f != nil && (*f)(w, r) {
		return
	}
	if r.Method == http.MethodPost && r.Header.Get("X-Amz-Target") == publicTarget {
		s.servePublic(w, r)
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("X-Amz-Target") != target {
		WriteError(w, http.StatusBadRequest, "UnknownOperationException", "")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=") {
		WriteError(w, http.StatusBadRequest, "MissingAuthenticationTokenException", "Missing Authentication Token")
		return
	}
	var in struct {
		RegistryIDs []string `json:"registryIds"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		WriteError(w, http.StatusBadRequest, "SerializationException", "")
		return
	}
	ids := in.RegistryIDs
	if len(ids) == 0 {
		ids = []string{s.Account}
	}
	for _, id := range ids {
		if !idPattern.MatchString(id) || len(ids) > 10 {
			WriteError(w, http.StatusBadRequest, "InvalidParameterException",
				"Invalid parameter at 'registryIds' failed to satisfy constraint: 'Member must satisfy constraint: [Member must satisfy regular expression pattern: [0-9]{12}]'")
			return
		}
	}
	expAt := s.Now().Add(s.Lifetime)
	n := s.calls.Load()
	var logins []Login
	s.mu.Lock()
	for _, id := range ids {
		pw := fmt.Sprintf("ECRTEST-PASSWORD-%s-%d", id, n)
		s.issued[id] = pw
		s.expiry[pw] = expAt.Truncate(time.Millisecond)
		logins = append(logins, Login{Host: s.Host(id), Password: pw})
	}
	s.mu.Unlock()
	WriteAnswer(w, expAt, logins...)
}

// WriteAnswer answers GetAuthorizationToken with logins expiring at exp, as ECR
// does: proxyEndpoint https://<host>, expiresAt in epoch seconds with
// milliseconds. Use it from intercepts to answer what real ECR would not.
func WriteAnswer(w http.ResponseWriter, exp time.Time, logins ...Login) {
	type data struct {
		AuthorizationToken string  `json:"authorizationToken"`
		ExpiresAt          float64 `json:"expiresAt"`
		ProxyEndpoint      string  `json:"proxyEndpoint"`
	}
	var out struct {
		AuthorizationData []data `json:"authorizationData"`
	}
	for _, l := range logins {
		out.AuthorizationData = append(out.AuthorizationData, data{
			AuthorizationToken: base64.StdEncoding.EncodeToString([]byte("AWS:" + l.Password)),
			ExpiresAt:          float64(exp.UnixMilli()) / 1000,
			ProxyEndpoint:      "https://" + l.Host,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// WriteError answers the way ECR does: a JSON body with the exact-case __type.
// Use it from intercepts, e.g. WriteError(w, 400, "ThrottlingException", "Rate exceeded").
func WriteError(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, map[string]string{"__type": code, "message": message})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("x-amzn-RequestId", "5b2c7c1e-6f1d-4a7e-9d61-0c1f7e5a0b3d")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
