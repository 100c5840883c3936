package rancherapi

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
)

// ErrNotFound is matched by errors.Is for a 404 answer.
var ErrNotFound = errors.New("not found")

// Error is a failed exchange with Rancher: a non-2xx answer (StatusCode and the
// Cattle error envelope's Code, FieldName and Message), a transport failure (Err),
// or a body that could not be used. It never holds a request or response body.
type Error struct {
	Method     string
	URL        string // without credentials
	StatusCode int    // 0 when no answer came
	Code       string // Cattle error code, e.g. "MissingRequired", "ServerAddressUsed"
	FieldName  string // the field a 422 is about
	Message    string
	Err        error // transport or decoding cause
	// NotRancher, when set, says what answered instead of a Rancher API
	// ("it answered 404 with an HTML page titled …"): CATTLE_URL points
	// elsewhere, whatever the status suggests.
	NotRancher string
	// token is true when the request carried a Rancher 2.x API token (a
	// bearer token, or a key pair whose access key is token-…), for the 401
	// hint.
	token bool
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s:", e.Method, e.URL)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " %d", e.StatusCode)
		switch {
		case e.Code != "":
			fmt.Fprintf(&b, " %s", e.Code)
		case e.Message == "":
			fmt.Fprintf(&b, " %s", http.StatusText(e.StatusCode))
		}
		if e.FieldName != "" {
			fmt.Fprintf(&b, " (field %s)", e.FieldName)
		}
	}
	if e.Message != "" && e.Message != e.Code {
		fmt.Fprintf(&b, " %s", e.Message)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, " %s", e.Err)
	}
	if h := e.hint(); h != "" {
		fmt.Fprintf(&b, " (%s)", h)
	}
	return b.String()
}

// hint says how to fix the errors users hit most (docs/rancher-api.md#authentication, #pitfalls).
func (e *Error) hint() string {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	switch {
	case errors.As(e.Err, &ua):
		return "Rancher's TLS certificate is not signed by a trusted CA: give the CA bundle in RANCHER_CA_FILE"
	case errors.As(e.Err, &hn):
		return "Rancher's TLS certificate does not name this host: use the host name the certificate was issued for"
	}
	if h := networkHint(e); h != "" {
		return h
	}
	if e.NotRancher != "" {
		return notRancherHint(e.NotRancher)
	}
	switch e.StatusCode {
	case http.StatusUnauthorized:
		if e.token {
			return tokenRejected
		}
		return "the API key pair was rejected: check the access key and secret key, and that the key still exists in Rancher"
	case http.StatusForbidden:
		return "the API key may not act on this environment or project: on Rancher 1.x use an environment API key, " +
			"or a service-account key (labels io.rancher.container.create_agent=true, io.rancher.container.agent.role=environment), " +
			"or the environment id the key belongs to; on Rancher 2.x the key's user must be a member of the project allowed to manage secrets"
	case http.StatusNotFound:
		if e.Method == http.MethodGet {
			return "no such API here: is CATTLE_URL https://<rancher>/v2-beta (Rancher 1.x) or https://<rancher>/v3 (Rancher 2.x), and does the environment or project exist?"
		}
	case http.StatusMethodNotAllowed:
		return "the API key's role cannot write registries: use an environment or service-account key"
	}
	return ""
}

// tokenRejected is the 401 hint for a Rancher 2.x API token
// (https://ranchermanager.docs.rancher.com/reference-guides/user-settings/api-keys).
const tokenRejected = "Rancher rejected the API token: it may have expired (API keys can be created with an expiry), " +
	"been deleted, or belong to a user who was disabled or removed; create a new API key in Rancher " +
	"(user menu, Account & API Keys, Create API Key, no scope) and set CATTLE_SECRET_KEY to its bearer token, token-xxxxx:yyyy"

// networkHint names CATTLE_URL and the likely fix when Rancher could not be
// reached, or answered in the other protocol.
func networkHint(e *Error) string {
	var dns *net.DNSError
	var rec tls.RecordHeaderError
	var ne net.Error
	switch {
	case e.StatusCode == http.StatusBadRequest && e.Code == "" && strings.HasPrefix(e.URL, "http://"):
		// A TLS port answers a plain request with a bare 400 (Go's and nginx's do).
		return "if Rancher serves HTTPS on this port, CATTLE_URL must start with https://"
	case e.Err == nil:
		return ""
	case errors.As(e.Err, &dns):
		return "CATTLE_URL's host name does not resolve: check its spelling and the DNS this container uses"
	case errors.Is(e.Err, syscall.ECONNREFUSED):
		return "nothing listens at CATTLE_URL's host and port: check the port, and that Rancher is running and reachable from here"
	// net/http turns a plain answer to a TLS hello into this text (net/http/transport.go).
	case errors.As(e.Err, &rec), strings.Contains(e.Err.Error(), "server gave HTTP response to HTTPS client"):
		return "CATTLE_URL says https:// but the server answers plain HTTP: use http://, or Rancher's HTTPS port"
	// net/http reports a hang-up before any answer as "server closed idle
	// connection" (errServerClosedIdle in net/http/transport.go, unexported).
	case errors.Is(e.Err, syscall.ECONNRESET), errors.Is(e.Err, io.EOF), errors.Is(e.Err, io.ErrUnexpectedEOF),
		strings.Contains(e.Err.Error(), "server closed idle connection"):
		return "the connection was closed without an answer: check CATTLE_URL's scheme (http:// or https://) and port, and any proxy in between"
	case errors.As(e.Err, &ne) && ne.Timeout():
		return "no answer in time: check CATTLE_URL's host and port, firewalls, and HTTPS_PROXY / NO_PROXY"
	}
	return ""
}

// Unwrap exposes the cause, and ErrNotFound for a 404 of Rancher's (a 404 of
// something else says nothing of the object asked for).
func (e *Error) Unwrap() []error {
	var errs []error
	if e.StatusCode == http.StatusNotFound && e.NotRancher == "" {
		errs = append(errs, ErrNotFound)
	}
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	return errs
}

// Temporary reports whether trying again later may succeed: no answer at all,
// 408, 409 (a resource in transition), 429 and 5xx.
func (e *Error) Temporary() bool {
	switch {
	case e.StatusCode == 0:
		return true
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusConflict,
		e.StatusCode == http.StatusTooManyRequests, e.StatusCode >= 500:
		return true
	}
	return false
}

// HasCode reports whether err is a Rancher error with the given code.
func HasCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && strings.EqualFold(e.Code, code)
}

// errorBody is Cattle's error envelope (docs/rancher-api.md#errors). status can be a number or, from
// Rancher 2's auth filter, a string, so it is not decoded; the HTTP status is used.
type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	FieldName string `json:"fieldName"`
}

// checkResponse returns nil for 2xx and an *Error otherwise, reading at most 1 MiB
// of the body for the Cattle error envelope. Only what is safe of it is kept:
// a known code, a plain field name, a short message without the secrets the
// request carried (see safe.go).
func checkResponse(req *http.Request, resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	e := &Error{Method: req.Method, URL: sanitizeURL(req.URL), StatusCode: resp.StatusCode, token: sentToken(req)}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBodyBytes))
	secrets := requestSecrets(req)
	e.NotRancher = notRancher(resp.StatusCode, resp.Header, body, secrets)
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil {
		e.Code, e.FieldName = safeCode(eb.Code), safeFieldName(eb.FieldName)
		if e.FieldName != "" && safeMessage(e.FieldName, secrets) != e.FieldName {
			e.FieldName = ""
		}
		e.Message = safeMessage(eb.Message, secrets)
	}
	if e.Code == "" && e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// sentToken reports whether req authenticated with a Rancher 2.x API token:
// "Bearer token-…", or Basic with the access key token-….
func sentToken(req *http.Request) bool {
	if _, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		return true
	}
	user, _, ok := req.BasicAuth()
	return ok && strings.HasPrefix(user, "token-")
}
