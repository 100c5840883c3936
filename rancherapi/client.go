// Package rancherapi is a small client for the Rancher APIs an ECR credential
// refresher needs: Rancher 1.x's Cattle API (registries and registry
// credentials, type Cattle) and Rancher 2.x's norman /v3 API (projects and
// dockerCredentials, type Norman), over one shared transport (Client). Calling a
// /v3 method on a Cattle scope does not compile.
//
// It knows nothing about ECR or schedules. See docs/rancher-api.md for the API
// facts it relies on.
package rancherapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	// DefaultTimeout bounds one HTTP exchange with Rancher when the caller passes no
	// *http.Client. The old image had no timeout at all, so one hung connection
	// stalled it forever.
	DefaultTimeout = 15 * time.Second

	// DefaultPageSize is the page size asked for when listing. Cattle caps limit
	// at 3000 (docs/rancher-api.md#pagination); asking for the cap keeps requests per run near one.
	DefaultPageSize = 3000

	// DefaultMaxIdleConnsPerHost keeps enough connections to Rancher open between
	// runs for scopes written side by side (the refresher's default 32 writers);
	// net/http's default of 2 would open new ones every run, and 16 opened 16 a
	// run at 50 environments (BENCHMARKS.md, "A whole run").
	DefaultMaxIdleConnsPerHost = 32

	// maxObjectBytes bounds the body of a single object (a create or update
	// answer); maxErrorBodyBytes an error body. Lists are bounded in list.go.
	maxObjectBytes    = 1 << 20
	maxErrorBodyBytes = 1 << 20
)

// Client is the transport shared by Cattle and Norman: one Rancher API URL, its
// key, and the HTTP client. It talks to one scope: an environment or project
// chosen by the URL or, for an unscoped URL, by the API key itself.
type Client struct {
	hc        *http.Client
	base      *url.URL // ends in "/": e.g. http://host/v2-beta/projects/1a5/
	root      *url.URL // the version root, e.g. http://host/v2-beta/
	accessKey string
	secretKey string
	projectID string // "" when the key's own environment is used
	rancher2  bool

	// listBytes and listEntries override MaxListBytes and MaxListEntries (tests).
	listBytes   int64
	listEntries int

	// UserAgent is sent with every request.
	UserAgent string
	// PageSize is the limit asked for per page when listing.
	PageSize int
	// Debugf, when set, receives one line per HTTP exchange (method, URL without
	// credentials, status, duration). Never a header or a body.
	Debugf func(format string, args ...any)
}

// NewClient returns a client for a Rancher URL in any form users write it (see
// ParseURL). A nil hc gets a client with DefaultTimeout and room for
// DefaultMaxIdleConnsPerHost idle connections; http.DefaultClient is never
// modified.
func NewClient(rawURL, accessKey, secretKey string, hc *http.Client) (*Client, error) {
	a, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
		hc = &http.Client{Timeout: DefaultTimeout, Transport: tr}
	}
	return &Client{
		hc:        hc,
		base:      a.Base,
		root:      a.Root,
		rancher2:  a.Rancher2,
		accessKey: accessKey,
		secretKey: secretKey,
		projectID: a.Project,
		UserAgent: "rancher-ecr-credentials",
		PageSize:  DefaultPageSize,
	}, nil
}

// WithProject returns a copy of c scoped to another environment (Rancher 1.x) or
// project (Rancher 2.x), under the same API version.
func (c *Client) WithProject(id string) *Client {
	n := *c
	n.base = projectURL(c.root, id, c.rancher2)
	n.projectID = id
	return &n
}

// Cattle is a Rancher 1.x environment's registries and registry credentials.
type Cattle struct{ *Client }

// Norman is a Rancher 2.x project's dockerCredentials, through /v3.
type Norman struct{ *Client }

// Cattle returns c as a Rancher 1.x client; it fails for a /v3 URL.
func (c *Client) Cattle() (*Cattle, error) {
	if c.rancher2 {
		return nil, fmt.Errorf("%s is a Rancher 2.x (/v3) URL, not Rancher 1.x", sanitizeURL(c.root))
	}
	return &Cattle{c}, nil
}

// Norman returns c as a Rancher 2.x client; it fails for a Rancher 1.x URL.
func (c *Client) Norman() (*Norman, error) {
	if !c.rancher2 {
		return nil, fmt.Errorf("dockerCredentials are a Rancher 2.x (/v3) API; %s is Rancher 1.x", sanitizeURL(c.root))
	}
	return &Norman{c}, nil
}

// NewCattle is NewClient for a Rancher 1.x URL.
func NewCattle(rawURL, accessKey, secretKey string, hc *http.Client) (*Cattle, error) {
	c, err := NewClient(rawURL, accessKey, secretKey, hc)
	if err != nil {
		return nil, err
	}
	return c.Cattle()
}

// NewNorman is NewClient for a Rancher 2.x (/v3) URL.
func NewNorman(rawURL, accessKey, secretKey string, hc *http.Client) (*Norman, error) {
	c, err := NewClient(rawURL, accessKey, secretKey, hc)
	if err != nil {
		return nil, err
	}
	return c.Norman()
}

// WithProject returns a copy of c scoped to another environment.
func (c *Cattle) WithProject(id string) *Cattle { return &Cattle{c.Client.WithProject(id)} }

// WithProject returns a copy of c scoped to another project (<cluster>:<project>).
func (c *Norman) WithProject(id string) *Norman { return &Norman{c.Client.WithProject(id)} }

// Rancher2 reports whether the client speaks Rancher 2.x's /v3 API.
func (c *Client) Rancher2() bool { return c.rancher2 }

// BaseURL returns the normalized API base the client writes under, ending in "/".
func (c *Client) BaseURL() string { return c.base.String() }

// ProjectID returns the environment id named in the URL, or "" when the API key's
// own environment is used.
func (c *Client) ProjectID() string { return c.projectID }

// newRequest builds a request for a path relative to the base URL (or a path with
// query such as a pagination link, see resolve) with auth and JSON headers.
func (c *Client) newRequest(ctx context.Context, method string, u *url.URL, body any) (*http.Request, error) {
	var buf io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		buf = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), buf)
	if err != nil {
		return nil, err
	}
	if c.accessKey == "" && strings.Contains(c.secretKey, ":") {
		// A Rancher 2.x bearer token, "token-xxxxx:secret", given whole.
		req.Header.Set("Authorization", "Bearer "+c.secretKey)
	} else {
		req.SetBasicAuth(c.accessKey, c.secretKey)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.UserAgent)
	// Ask for a bare 401 instead of a browser login challenge (docs/rancher-api.md#authentication).
	req.Header.Set("X-API-No-Challenge", "true")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// endpoint returns base + rel, with optional query.
func (c *Client) endpoint(rel string, q url.Values) *url.URL {
	u := c.base.JoinPath(rel)
	if q != nil {
		u.RawQuery = q.Encode()
	}
	return u
}

// resolve turns a link from a response (pagination.next) into a URL on the
// configured host. Only its path and query are kept: Cattle builds links from the
// Host it was asked under, which behind a proxy may not be the one we use, and
// the Basic credentials must never go to another host.
func (c *Client) resolve(link string) (*url.URL, error) {
	l, err := url.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("pagination link: %w", redactURLError(err))
	}
	u := *c.base
	u.Path, u.RawPath, u.RawQuery = l.Path, l.RawPath, l.RawQuery
	return &u, nil
}

// do sends req and decodes a 2xx JSON body into v (if v is non-nil). Any other
// status becomes an *Error. The body is always drained and closed so the
// connection is reused.
func (c *Client) do(req *http.Request, v any) error {
	resp, err := c.roundTrip(req)
	if err != nil {
		return err
	}
	defer closeBody(resp)
	if v == nil {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxObjectBytes+1))
	if err != nil {
		return &Error{Method: req.Method, URL: sanitizeURL(req.URL), StatusCode: resp.StatusCode, Err: err}
	}
	if len(body) > maxObjectBytes {
		return &Error{Method: req.Method, URL: sanitizeURL(req.URL), StatusCode: resp.StatusCode,
			Message: fmt.Sprintf("response body larger than %d MiB", maxObjectBytes>>20)}
	}
	if nr := notRancher(resp.StatusCode, resp.Header, body, requestSecrets(req)); nr != "" {
		return &Error{Method: req.Method, URL: sanitizeURL(req.URL), StatusCode: resp.StatusCode, NotRancher: nr}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return &Error{Method: req.Method, URL: sanitizeURL(req.URL), StatusCode: resp.StatusCode,
			Message: "response is not Rancher API JSON (is CATTLE_URL the API URL, not the UI?)", Err: jsonError(err)}
	}
	return nil
}

// roundTrip sends req and returns a 2xx answer, whose body the caller closes
// with closeBody; any other answer is an *Error. It runs on a copy of the
// client's *http.Client whose redirect policy keeps the key and body on
// CATTLE_URL's origin (see checkRedirect), so the caller's client is neither
// trusted nor modified.
func (c *Client) roundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	hc := *c.hc
	hc.CheckRedirect = c.checkRedirect(c.hc.CheckRedirect)
	resp, err := hc.Do(req)
	if err != nil {
		if ctxErr := req.Context().Err(); ctxErr != nil {
			return nil, fmt.Errorf("%s %s: %w", req.Method, sanitizeURL(req.URL), ctxErr)
		}
		return nil, &Error{Method: req.Method, URL: sanitizeURL(req.URL), Err: boundError(redactURLError(err), requestSecrets(req))}
	}
	if c.Debugf != nil {
		c.Debugf("rancher api %s %s: %d in %s", req.Method, sanitizeURL(req.URL), resp.StatusCode, time.Since(start).Round(time.Millisecond))
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 && resp.Header.Get("Location") != "" {
		closeBody(resp)
		return nil, &Error{Method: req.Method, URL: sanitizeURL(req.URL), StatusCode: resp.StatusCode, Message: c.redirectMessage(req, resp)}
	}
	if err := checkResponse(req, resp); err != nil {
		closeBody(resp)
		return nil, err
	}
	return resp, nil
}

// closeBody drains a little of what is left, so the connection can be reused,
// and closes the body.
func closeBody(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBodyBytes))
	resp.Body.Close()
}

// send makes one request with a JSON body and decodes the answer into a T.
func send[T any](ctx context.Context, c *Client, method string, u *url.URL, body any) (T, error) {
	var zero, v T
	req, err := c.newRequest(ctx, method, u, body)
	if err != nil {
		return zero, err
	}
	if err := c.do(req, &v); err != nil {
		return zero, err
	}
	return v, nil
}

// jsonError keeps the position of a JSON syntax error but never quotes the body.
func jsonError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid JSON at byte %d", se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %q has the wrong JSON type %s", te.Field, te.Value)
	}
	return errors.New("invalid JSON")
}

// sanitizeURL returns u without userinfo, for errors and logs.
func sanitizeURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	return c.String()
}

// String names the client by its API base; the keys are never printed, with %v,
// %+v or %s.
func (c *Client) String() string {
	if c == nil {
		return "rancherapi.Client(nil)"
	}
	return "rancherapi.Client{base: " + sanitizeURL(c.base) + ", access_key: " + c.accessKey + ", secret_key: REDACTED}"
}

// GoString keeps %#v from printing the secret key too.
func (c *Client) GoString() string { return c.String() }
