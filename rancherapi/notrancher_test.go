package rancherapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Pages and answers of servers that are not Rancher, as they send them.
const (
	nginxWelcome = "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body><h1>Welcome to nginx!</h1></body>\n</html>\n"
	nginx404     = "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n</body>\r\n</html>\r\n"
	// kube-apiserver's answers to a request it cannot authenticate (a bearer
	// token it does not know) and to an anonymous one on a path outside its API.
	kube401 = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`
	kube403 = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"system:anonymous\" cannot get path \"/v3/settings/server-version\"","reason":"Forbidden","details":{},"code":403}`
)

// notRancherServers are httptest servers that are not Rancher: a web server
// (nginx's pages), a JSON API of something else, Go's default 404, and a
// Kubernetes API server.
func notRancherServers(t *testing.T) map[string]*httptest.Server {
	start := func(h http.HandlerFunc) *httptest.Server {
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		return s
	}
	html := func(w http.ResponseWriter, status int, page string) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, page)
	}
	js := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
	return map[string]*httptest.Server{
		// nginx serving a site: its welcome page at /, its 404 page elsewhere.
		"Nginx": start(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/" {
				html(w, 200, nginxWelcome)
				return
			}
			html(w, 404, nginx404)
		}),
		// A single-page application answering its page at every path.
		"HTMLEverywhere": start(func(w http.ResponseWriter, r *http.Request) { html(w, 200, nginxWelcome) }),
		// Another service's JSON API, answering every path.
		"OtherJSONAPI": start(func(w http.ResponseWriter, r *http.Request) {
			js(w, 200, `{"status":"ok","version":"3.1.4","data":[{"id":1,"name":"x"}],"links":{"self":"/"}}`)
		}),
		"OtherJSON404": start(func(w http.ResponseWriter, r *http.Request) {
			js(w, 404, `{"error":"not found","path":"`+r.URL.Path+`"}`)
		}),
		"GoDefault404": start(http.NotFound),
		"KubernetesAPIServer": start(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
				js(w, 401, kube401)
				return
			}
			js(w, 403, kube403)
		}),
	}
}

// A CATTLE_URL that points at something other than Rancher gets an error that
// says so, with the URL forms to check, for every call the daemon makes first
// (Rancher 1.x listings, Rancher 2.x's version and listings), whatever status
// it answered: never "the key pair was rejected" nor "does the project exist".
func TestClient_NotRancher(t *testing.T) {
	t.Parallel()
	calls := []struct {
		name, path string
		token      bool // a Rancher 2.x bearer token instead of a key pair
		call       func(ctx context.Context, c *Client) error
	}{
		{"Rancher1BareHost", "", false, func(ctx context.Context, c *Client) error {
			_, err := (&Cattle{c}).ListRegistries(ctx)
			return err
		}},
		{"Rancher1Environment", "/v2-beta/projects/1a5", false, func(ctx context.Context, c *Client) error {
			_, err := (&Cattle{c}).ListRegistries(ctx)
			return err
		}},
		{"Rancher1Projects", "/v1", false, func(ctx context.Context, c *Client) error {
			_, err := c.ListProjects(ctx)
			return err
		}},
		{"Rancher2Version", "/v3", true, func(ctx context.Context, c *Client) error {
			_, err := c.GetServerVersion(ctx)
			return err
		}},
		{"Rancher2Project", "/v3/project/c-abcde:p-fghij", true, func(ctx context.Context, c *Client) error {
			_, err := (&Norman{c}).ListDockerCredentials(ctx)
			return err
		}},
		{"Rancher2KeyPair", "/v3/project/c-abcde:p-fghij", false, func(ctx context.Context, c *Client) error {
			_, err := (&Norman{c}).ListDockerCredentials(ctx)
			return err
		}},
	}
	for name, srv := range notRancherServers(t) {
		for _, call := range calls {
			t.Run(name+"/"+call.name, func(t *testing.T) {
				t.Parallel()
				access, secret := testAccess, testSecret
				if call.token {
					access, secret = "", "token-abcde:"+testSecret
				}
				c, err := NewClient(srv.URL+call.path, access, secret, nil)
				if err != nil {
					t.Fatal(err)
				}
				err = call.call(t.Context(), c)
				var e *Error
				if !errors.As(err, &e) || e.NotRancher == "" {
					t.Fatalf("err = %v, want an *Error naming what answered", err)
				}
				msg := err.Error()
				for _, want := range []string{"this does not look like a Rancher API (it answered ", "check CATTLE_URL's host, port and path",
					"Rancher 1.x answers at https://<rancher>/v2-beta", "Rancher 2.x at https://<rancher>/v3"} {
					if !strings.Contains(msg, want) {
						t.Errorf("error lacks %q:\n%s", want, msg)
					}
				}
				for _, wrong := range []string{"key pair", "API token", "does the environment or project exist", "may not act on", testSecret} {
					if strings.Contains(msg, wrong) {
						t.Errorf("error says %q:\n%s", wrong, msg)
					}
				}
				if errors.Is(err, ErrNotFound) || e.Temporary() {
					t.Errorf("ErrNotFound %v, Temporary %v: a server that is not Rancher is neither", errors.Is(err, ErrNotFound), e.Temporary())
				}
				if want := map[string]string{"Nginx": `HTML page titled "`, "HTMLEverywhere": `HTML page titled "Welcome to nginx!"`,
					"OtherJSONAPI": `JSON that has no "type"`, "OtherJSON404": `404 with JSON that has no "type"`,
					"GoDefault404":        `404 with plain text "404 page not found"`,
					"KubernetesAPIServer": "as a Kubernetes API server does, with a v1 Status"}[name]; !strings.Contains(msg, want) {
					t.Errorf("error does not say %q:\n%s", want, msg)
				}
				if k := strings.Contains(msg, "KUBE_NAMESPACES"); k != (name == "KubernetesAPIServer") {
					t.Errorf("error names KUBE_NAMESPACES: %v:\n%s", k, msg)
				}
			})
		}
	}
}

// Rancher's own answers are never taken for another server's: its 404, its
// auth filter's 401, and a proxy's error page in front of it (5xx).
func TestNotRancher_RancherAnswers(t *testing.T) {
	t.Parallel()
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	for name, c := range map[string]struct {
		status int
		header http.Header
		body   string
	}{
		"Cattle404":          {404, jsonHeader, `{"id":"x","type":"error","status":404,"code":"Not Found","message":"Not Found"}`},
		"Norman404":          {404, jsonHeader, `{"baseType":"error","type":"error","status":404,"code":"NotFound","message":"not found"}`},
		"AuthFilter401":      {401, jsonHeader, `{"type":"error","status":"401","message":"Unauthorized 401: must authenticate"}`},
		"Collection":         {200, jsonHeader, `{"type":"collection","data":[]}`},
		"BadGatewayPage":     {502, http.Header{"Content-Type": {"text/html"}}, "<html><title>502 Bad Gateway</title></html>"},
		"ServiceUnavailable": {503, nil, ""},
		"Empty401":           {401, nil, ""},
	} {
		if got := notRancher(c.status, c.header, []byte(c.body), nil); got != "" {
			t.Errorf("%s: notRancher = %q, want \"\"", name, got)
		}
	}
}

// A page title or text that could hold a secret is not quoted.
func TestNotRancher_QuotesOnlyShortPlainText(t *testing.T) {
	t.Parallel()
	long := "<html><title>" + strings.Repeat("x", 80) + "</title></html>"
	secretish := "<html><title>token-abcde:" + strings.Repeat("Q", 40) + "</title></html>"
	for _, page := range []string{long, secretish} {
		got := notRancher(200, http.Header{"Content-Type": {"text/html"}}, []byte(page), nil)
		if got != "it answered 200 with an HTML page" {
			t.Errorf("notRancher = %q", got)
		}
	}
	if got := notRancher(404, nil, []byte(strings.Repeat("k", 30)+"\n"), nil); strings.Contains(got, "kkkk") {
		t.Errorf("notRancher quotes a secret-looking text: %q", got)
	}
}

// A 401 answered to a Rancher 2.x API token speaks of the token (expired,
// deleted, where to make a new one), not of a key pair; a key pair's speaks
// of the key pair.
func TestClient_UnauthorizedHints(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(serve(401, []byte(`{"type":"error","status":"401","message":"Unauthorized 401: must authenticate"}`)))
	t.Cleanup(srv.Close)
	for _, c := range []struct {
		name, url, access, secret string
		want, not                 []string
	}{
		{"BearerToken", srv.URL + "/v3", "", "token-abcde:" + testSecret,
			[]string{"Rancher rejected the API token", "expired", "Account & API Keys", "CATTLE_SECRET_KEY to its bearer token, token-xxxxx:yyyy"}, []string{"key pair"}},
		{"TokenAsKeyPair", srv.URL + "/v3", "token-abcde", testSecret,
			[]string{"Rancher rejected the API token", "expired"}, []string{"key pair"}},
		{"Rancher1KeyPair", srv.URL + "/v2-beta", testAccess, testSecret,
			[]string{"the API key pair was rejected"}, []string{"API token", "expired"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cl, err := NewClient(c.url, c.access, c.secret, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = cl.ListProjects(t.Context())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			for _, w := range append(c.not, testSecret, "does not look like") {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error says %q:\n%v", w, err)
				}
			}
		})
	}
}

// A page that quotes a short piece of the request's own secret in its title
// or first line is named without it: a secret too short to look like one is
// still never quoted.
func TestNotRancher_NeverQuotesTheRequestsSecret(t *testing.T) {
	t.Parallel()
	const secret = "pw-short9"
	for _, body := range []string{"<html><title>hello " + secret + "</title></html>", "denied for " + secret + "\n"} {
		header := http.Header{"Content-Type": {"text/plain"}}
		if strings.HasPrefix(body, "<html>") {
			header = http.Header{"Content-Type": {"text/html"}}
		}
		if got := notRancher(404, header, []byte(body), []string{secret}); strings.Contains(got, secret) {
			t.Errorf("notRancher(%q) = %q: quotes the secret", body, got)
		}
		if got := notRancher(404, header, []byte(body), nil); !strings.Contains(got, secret) {
			t.Errorf("notRancher(%q) = %q without secrets: the test shows nothing", body, got)
		}
	}
}
