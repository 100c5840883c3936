package rancherreal

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// apiClient calls Rancher's /v3 API. Until the cacerts setting is read it does not verify
// Rancher's certificate (a server this process just started on loopback); afterwards it trusts
// exactly that CA. Every request has a connection of its own: Rancher renews its serving
// certificate in its first minute and drops the connections open then, and a POST on a dropped
// keep-alive connection fails with EOF (Go retries only idempotent requests).
type apiClient struct {
	base string
	mu   sync.Mutex
	http *http.Client
}

func newAPIClient(base string) *apiClient {
	return &apiClient{base: base, http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // bootstrap only, see pin
	}}}
}

// pin makes the client trust only caPEM.
func (c *apiClient) pin(caPEM []byte) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return errors.New("the cacerts setting holds no PEM certificate")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.http.CloseIdleConnections()
	c.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return nil
}

// APIError is an answer other than 2xx.
type APIError struct {
	Method, Path string
	StatusCode   int
	Body         string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: %d: %s", e.Method, e.Path, e.StatusCode, e.Body)
}

// StatusOf returns the HTTP status of an *APIError in err's chain, 0 otherwise.
func StatusOf(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.StatusCode
	}
	return 0
}

// do sends body (JSON, nil for none) to path with the bearer token (none when empty) and decodes
// a 2xx answer into out (when not nil).
func (c *apiClient) do(ctx context.Context, token, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c.mu.Lock()
	hc := c.http
	c.mu.Unlock()
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &APIError{Method: method, Path: path, StatusCode: resp.StatusCode, Body: string(bytes.TrimSpace(data))}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
	}
	return nil
}

// V3 calls Rancher's API at path (e.g. "/v3/projects") with token (AdminToken, a user's key, or ""
// for none) and decodes a 2xx answer into out. Other answers are an *APIError.
func (s *Server) V3(ctx context.Context, token, method, path string, body, out any) error {
	return s.api.do(ctx, token, method, path, body, out)
}

// login returns a session token for a local user.
func (s *Server) login(ctx context.Context, username, password string) (string, error) {
	var out struct {
		Token string `json:"token"`
	}
	err := s.api.do(ctx, "", http.MethodPost, "/v3-public/localProviders/local?action=login",
		map[string]any{"username": username, "password": password, "responseType": "json"}, &out)
	if err == nil && out.Token == "" {
		err = errors.New("login answered no token")
	}
	return out.Token, err
}

// Token is an API key as POST /v3/tokens returns it.
type Token struct {
	Name      string `json:"name"`
	UserID    string `json:"userId"`
	Token     string `json:"token"` // token-xxxxx:secret, only in the answer to its creation
	ExpiresAt string `json:"expiresAt"`
	TTL       int64  `json:"ttl"`
}

// createAPIKey makes an API key with no scope, as a user does in the UI (Account & API Keys), that
// lives ttl (0: Rancher's maximum), authenticated by session.
func (s *Server) createAPIKey(ctx context.Context, session, description string, ttl time.Duration) (Token, error) {
	var tok Token
	err := s.api.do(ctx, session, http.MethodPost, "/v3/tokens",
		map[string]any{"type": "token", "description": description, "ttl": ttl.Milliseconds()}, &tok)
	if err == nil && tok.Token == "" {
		err = errors.New("POST /v3/tokens answered no token")
	}
	return tok, err
}

// bootstrap waits for the admin login, makes the admin API key, waits for the Default project,
// pins the CA and fills the aggregated ClusterRoles.
func (s *Server) bootstrap(ctx context.Context) error {
	var session string
	if err := s.poll(ctx, time.Second, "Rancher accepting the admin login", func() (bool, error) {
		var err error
		session, err = s.login(ctx, "admin", AdminPassword)
		return err == nil, err
	}); err != nil {
		return err
	}
	key, err := s.createAPIKey(ctx, session, "rancherreal admin", 0)
	if err != nil {
		return fmt.Errorf("admin API key: %w", err)
	}
	s.AdminToken, s.AdminID = key.Token, key.UserID
	if err := s.poll(ctx, time.Second, "the Default project", func() (bool, error) {
		var list struct {
			Data []struct{ ID string } `json:"data"`
		}
		err := s.V3(ctx, s.AdminToken, http.MethodGet, "/v3/projects?name=Default", nil, &list)
		return err == nil && len(list.Data) > 0, err
	}); err != nil {
		return err
	}
	var cacerts struct {
		Value string `json:"value"`
	}
	if err := s.V3(ctx, s.AdminToken, http.MethodGet, "/v3/settings/cacerts", nil, &cacerts); err != nil {
		return err
	}
	s.CAPEM = []byte(cacerts.Value)
	s.CAFile = filepath.Join(s.Dir, "rancher-ca.pem")
	if err := os.WriteFile(s.CAFile, s.CAPEM, 0o600); err != nil {
		return err
	}
	if err := s.api.pin(s.CAPEM); err != nil {
		return err
	}
	// Proof the pinned CA verifies the serving certificate for 127.0.0.1.
	if err := s.V3(ctx, s.AdminToken, http.MethodGet, "/v3/settings/server-version", nil, nil); err != nil {
		return fmt.Errorf("with the cacerts CA pinned: %w", err)
	}
	return AggregateClusterRoles(ctx, s.Kube.AdminConfig())
}

// query escapes a value for a /v3 filter.
func query(v string) string { return url.QueryEscape(v) }
