package mototest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
)

// Proxy stands between the AWS SDK and moto_server and sees what moto does
// not tell: who signed each call. It forwards every request as it is, and
// counts STS AssumeRole calls per role (with the session names and external
// ids sent) and ECR GetAuthorizationToken calls per identity: the role whose
// session's access key signed the call, "" for any other key (the caller's
// own). It can deny a role at STS or at ECR as AWS does, and make every
// session expire at once. Point AWS_ENDPOINT_URL_STS and AWS_ENDPOINT_URL_ECR
// (or the clients' BaseEndpoint) at URL.
type Proxy struct {
	// URL is where the proxy listens.
	URL string

	mu       sync.Mutex
	keys     map[string]string   // session access key id → role ARN
	assumes  map[string]int      // role → AssumeRole calls
	sessions map[string][]string // role → session names sent
	external map[string][]string // role → external ids sent ("" when none)
	tokens   map[string]int      // identity → GetAuthorizationToken calls
	denySTS  map[string]bool
	denyECR  map[string]bool
	expire   bool
}

var (
	accessKeyRE  = regexp.MustCompile(`<AccessKeyId>([^<]+)</AccessKeyId>`)
	expirationRE = regexp.MustCompile(`<Expiration>[^<]+</Expiration>`)
	signingKeyRE = regexp.MustCompile(`Credential=([^/]+)/`)
)

// NewProxy starts a proxy to moto at motoURL until the test ends.
func NewProxy(t testing.TB, motoURL string) *Proxy {
	t.Helper()
	u, err := url.Parse(motoURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{keys: map[string]string{}, assumes: map[string]int{}, sessions: map[string][]string{},
		external: map[string][]string{}, tokens: map[string]int{}, denySTS: map[string]bool{}, denyECR: map[string]bool{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		r.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		switch {
		case form.Get("Action") == "AssumeRole":
			p.assumeRole(w, r, rp, form)
		case strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".GetAuthorizationToken"):
			p.getToken(w, r, rp)
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *Proxy) assumeRole(w http.ResponseWriter, r *http.Request, rp http.Handler, form url.Values) {
	role := form.Get("RoleArn")
	p.mu.Lock()
	p.assumes[role]++
	p.sessions[role] = append(p.sessions[role], form.Get("RoleSessionName"))
	p.external[role] = append(p.external[role], form.Get("ExternalId"))
	deny, expire := p.denySTS[role], p.expire
	p.mu.Unlock()
	if deny {
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code>`+
			`<Message>User: arn:aws:iam::%s:user/daemon is not authorized to perform: sts:AssumeRole on resource: %s</Message></Error>`+
			`<RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ErrorResponse>`, Account, role)
		return
	}
	rec := httptest.NewRecorder()
	rp.ServeHTTP(rec, r)
	out := rec.Body.Bytes()
	if m := accessKeyRE.FindSubmatch(out); m != nil {
		p.mu.Lock()
		p.keys[string(m[1])] = role
		p.mu.Unlock()
	}
	if expire {
		out = expirationRE.ReplaceAll(out, []byte("<Expiration>"+time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)+"</Expiration>"))
	}
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(out)
}

func (p *Proxy) getToken(w http.ResponseWriter, r *http.Request, rp http.Handler) {
	key := ""
	if m := signingKeyRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		key = m[1]
	}
	p.mu.Lock()
	identity := p.keys[key]
	p.tokens[identity]++
	deny := identity != "" && p.denyECR[identity]
	p.mu.Unlock()
	if deny {
		ecrtest.WriteError(w, http.StatusBadRequest, "AccessDeniedException",
			"User: "+strings.Replace(strings.Replace(identity, ":iam:", ":sts:", 1), ":role/", ":assumed-role/", 1)+
				"/session is not authorized to perform: ecr:GetAuthorizationToken on resource: *")
		return
	}
	rp.ServeHTTP(w, r)
}

// DenySTS makes STS refuse AssumeRole of role (AccessDenied, 403), as it does
// when the role's trust policy does not name the caller.
func (p *Proxy) DenySTS(role string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.denySTS[role] = true
}

// DenyECR makes ECR refuse GetAuthorizationToken signed by role's sessions
// (AccessDeniedException), as it does when the role's policy lacks it.
func (p *Proxy) DenyECR(role string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.denyECR[role] = true
}

// ExpireSessions makes every session AssumeRole hands out from now on already
// expired: a credentials cache must assume the role again at each use.
func (p *Proxy) ExpireSessions() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.expire = true
}

// Assumes returns how many AssumeRole calls named role.
func (p *Proxy) Assumes(role string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.assumes[role]
}

// Sessions returns the session names and external ids sent for role, one per call.
func (p *Proxy) Sessions(role string) (names, externalIDs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.sessions[role]...), append([]string(nil), p.external[role]...)
}

// Tokens returns how many GetAuthorizationToken calls identity signed (a role
// ARN, or "" for keys that are no session's).
func (p *Proxy) Tokens(identity string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokens[identity]
}
