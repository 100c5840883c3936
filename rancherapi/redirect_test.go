package rancherapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// sink is a server that must receive nothing: it records every request that
// reaches it, headers and body.
type sink struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string
}

func newSink(t *testing.T) *sink {
	t.Helper()
	s := &sink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.seen = append(s.seen, fmt.Sprintf("%s %s auth=%q body=%q", r.Method, r.URL, r.Header.Get("Authorization"), b))
		s.mu.Unlock()
		_, _ = io.WriteString(w, `{"type":"collection","data":[],"id":"1c1"}`)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// redirectTo answers every request with status and a Location on origin.
func redirectTo(status int, origin string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		http.Redirect(w, r, origin+r.URL.RequestURI(), status)
	}
}

// A redirect to another origin is never followed, whatever the status and
// method: the other server receives nothing (no Authorization header, no
// body), and the answer is an error naming the Location's origin and CATTLE_URL.
func TestClient_RedirectToOtherOrigin(t *testing.T) {
	t.Parallel()
	const password = "ecr-password-DO-NOT-LEAK"
	ops := map[string]func(context.Context, *Cattle) error{
		"List": func(ctx context.Context, c *Cattle) error { _, err := c.ListRegistries(ctx); return err },
		"Update": func(ctx context.Context, c *Cattle) error {
			_, err := c.UpdateRegistryCredential(ctx, "1c1", CredentialInput{PublicValue: "AWS", SecretValue: password, Email: "x@y"})
			return err
		},
		"Create": func(ctx context.Context, c *Cattle) error {
			_, err := c.CreateRegistryCredential(ctx, CredentialInput{RegistryID: "1sp1", PublicValue: "AWS", SecretValue: password, Email: "x@y"})
			return err
		},
	}
	for _, status := range []int{301, 302, 303, 307, 308} {
		for _, dest := range []string{"OtherPort", "OtherHost", "HTTPSToHTTP"} {
			for name, op := range ops {
				t.Run(fmt.Sprintf("%d/%s/%s", status, dest, name), func(t *testing.T) {
					t.Parallel()
					evil := newSink(t)
					_, port, _ := net.SplitHostPort(evil.srv.Listener.Addr().String())
					origin := evil.srv.URL
					var hc *http.Client // nil: the client NewClient builds
					var rancher *httptest.Server
					switch dest {
					case "OtherHost":
						// evil.example resolves, through the client's own dialer, to the sink.
						origin = "http://evil.example:" + port
						hc = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
							if strings.HasPrefix(addr, "evil.example:") {
								addr = evil.srv.Listener.Addr().String()
							}
							return (&net.Dialer{}).DialContext(ctx, network, addr)
						}}}
						rancher = httptest.NewServer(redirectTo(status, origin))
					case "HTTPSToHTTP":
						rancher = httptest.NewTLSServer(redirectTo(status, origin))
						hc = rancher.Client() // a caller's client, with its default (follow) policy
					default:
						rancher = httptest.NewServer(redirectTo(status, origin))
					}
					t.Cleanup(rancher.Close)
					c, err := NewCattle(rancher.URL+"/v2-beta/projects/1a5", testAccess, testSecret, hc)
					if err != nil {
						t.Fatal(err)
					}
					err = op(t.Context(), c)
					var e *Error
					if !errors.As(err, &e) || e.StatusCode != status {
						t.Fatalf("err = %v, want an *Error with status %d", err, status)
					}
					for _, want := range []string{"redirected to " + origin, "CATTLE_URL"} {
						if !strings.Contains(err.Error(), want) {
							t.Errorf("error %q does not say %q", err, want)
						}
					}
					if e.Temporary() {
						t.Errorf("a redirect elsewhere is reported as temporary: %v", err)
					}
					if got := evil.requests(); len(got) != 0 {
						t.Errorf("the other origin received %q", got)
					}
					for _, s := range []string{testSecret, password} {
						if strings.Contains(err.Error(), s) {
							t.Errorf("error holds a secret: %v", err)
						}
					}
					if hc != nil && hc.CheckRedirect != nil {
						t.Error("the caller's *http.Client was modified")
					}
				})
			}
		}
	}
}

// Reads may follow redirects on the same origin (a proxy adding a slash), with
// the key; writes never follow one, so a 303 cannot turn a PUT into a GET whose
// 200 looks like success, and a body is never sent twice.
func TestClient_RedirectSameOrigin(t *testing.T) {
	t.Parallel()
	t.Run("ReadFollowed", func(t *testing.T) {
		t.Parallel()
		c, mux, _ := setup(t)
		mux.HandleFunc("/v2-beta/projects/1a5/registries", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/v2-beta/projects/1a5/registries/?"+r.URL.RawQuery, http.StatusMovedPermanently)
		})
		mux.HandleFunc("/v2-beta/projects/1a5/registries/", func(w http.ResponseWriter, r *http.Request) {
			testAuth(t, r)
			serve(200, []byte(`{"type":"collection","data":[{"id":"1sp1","serverAddress":"h"}]}`))(w, r)
		})
		regs, err := c.ListRegistries(t.Context())
		if err != nil || len(regs) != 1 {
			t.Fatalf("ListRegistries = %v, %v; want the one registry behind the redirect", regs, err)
		}
	})
	for _, status := range []int{301, 302, 303, 307, 308} {
		t.Run(fmt.Sprintf("Write%d", status), func(t *testing.T) {
			t.Parallel()
			c, mux, _ := setup(t)
			var hits int
			var mu sync.Mutex
			mux.HandleFunc("/v2-beta/projects/1a5/registrycredentials/1c1", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere/1c1", status)
			})
			mux.HandleFunc("/elsewhere/1c1", func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				hits++
				mu.Unlock()
				serve(200, []byte(`{"id":"1c1"}`))(w, r)
			})
			_, err := c.UpdateRegistryCredential(t.Context(), "1c1", CredentialInput{PublicValue: "AWS", SecretValue: "pw", Email: "x@y"})
			if err == nil || !strings.Contains(err.Error(), "writes are never re-sent") {
				t.Errorf("err = %v, want a refused redirect", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if hits != 0 {
				t.Errorf("the redirect target was called %d times", hits)
			}
		})
	}
	t.Run("Loop", func(t *testing.T) {
		t.Parallel()
		c, mux, _ := setup(t)
		mux.HandleFunc("/v2-beta/projects/1a5/registries", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.RequestURI(), http.StatusFound)
		})
		_, err := c.ListRegistries(t.Context())
		if err == nil || !strings.Contains(err.Error(), "more than 5 redirects") {
			t.Errorf("err = %v, want too many redirects", err)
		}
	})
}
