package rancherapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestClient_Errors checks every error class a user can meet: what the message
// says, whether it is worth retrying, and that no secret is in it.
func TestClient_Errors(t *testing.T) {
	t.Parallel()
	item := `{"id":"1sp1","serverAddress":"h","description":"` + strings.Repeat("x", 990) + `"},`
	huge := append([]byte(`{"type":"collection","data":[`), []byte(strings.Repeat(item, (1<<20)/len(item)+10))...)
	huge = append(huge, []byte(`{"id":"x"}]}`)...)
	tests := []struct {
		name      string
		handler   http.HandlerFunc
		wantMsg   []string
		status    int
		temporary bool
		notFound  bool
	}{
		{name: "Unauthorized", handler: serve(401, fixture(t, "v2beta-error-401.json")), status: 401,
			wantMsg: []string{"401 Unauthorized", "access key and secret key"}},
		{name: "Forbidden", handler: serve(403, []byte(`{"type":"error","status":403,"code":"Forbidden","message":"Forbidden"}`)), status: 403,
			wantMsg: []string{"403 Forbidden", "environment API key", "io.rancher.container.agent.role=environment"}},
		{name: "NotFound", handler: serve(404, []byte(`{"type":"error","status":404,"code":"Not Found","message":"Not Found"}`)), status: 404, notFound: true,
			wantMsg: []string{"404 Not Found"}},
		{name: "Conflict", handler: serve(409, []byte(`{"type":"error","status":409,"code":"Conflict","message":"Conflict"}`)), status: 409, temporary: true,
			wantMsg: []string{"409 Conflict"}},
		{name: "MissingEmail", handler: serve(422, fixture(t, "v1-error-422-missing-required-email.json")), status: 422,
			wantMsg: []string{"422 MissingRequired (field email)"}},
		{name: "TooManyRequests", handler: serve(429, nil), status: 429, temporary: true, wantMsg: []string{"429 Too Many Requests"}},
		{name: "ServerError", handler: serve(500, []byte(`{"type":"error","status":500,"code":"Internal Server Error"}`)), status: 500, temporary: true,
			wantMsg: []string{"500 Internal Server Error"}},
		{name: "BadGatewayHTML", handler: func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(502)
			_, _ = io.WriteString(w, "<html>bad gateway "+testSecret+"</html>")
		}, status: 502, temporary: true, wantMsg: []string{"502 Bad Gateway"}},
		{name: "GarbageJSON", handler: serve(200, []byte(`{"type":"collection","data":[{"id":`)), status: 200,
			wantMsg: []string{"not Rancher API JSON", "invalid JSON"}},
		{name: "UIPage", handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "<!DOCTYPE html><html>Rancher</html>")
		}, status: 200, wantMsg: []string{"does not look like a Rancher API (it answered 200 with an HTML page)", "Rancher 2.x at https://<rancher>/v3"}},
		{name: "NotACollection", handler: serve(200, []byte(`{"id":"1a5","type":"project"}`)), status: 200,
			wantMsg: []string{`answer is a "project", not a collection`}},
		{name: "HugeBody", handler: serve(200, huge), status: 200, wantMsg: []string{"larger than 1 MiB across its pages"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, mux, _ := setup(t)
			c.listBytes = 1 << 20 // HugeBody: the bound's handling, not its size (TestClient_ListBounded)
			mux.HandleFunc("/v2-beta/projects/1a5/registries", tt.handler)
			_, err := c.ListRegistries(t.Context())
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not say %q", err, m)
				}
			}
			if e.StatusCode != tt.status || e.Temporary() != tt.temporary || errors.Is(err, ErrNotFound) != tt.notFound {
				t.Errorf("status=%d temporary=%v notFound=%v, want %d %v %v", e.StatusCode, e.Temporary(), errors.Is(err, ErrNotFound), tt.status, tt.temporary, tt.notFound)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error leaks the secret key: %v", err)
			}
		})
	}
}

func TestClient_CanceledContext(t *testing.T) {
	t.Parallel()
	c, mux, _ := setup(t)
	mux.HandleFunc("/v2-beta/projects/1a5/registries", serve(200, []byte(`{"type":"collection","data":[]}`)))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.ListRegistries(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// A server that never answers is cut by the client's timeout, not waited on.
func TestClient_Timeout(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() { close(block); srv.Close() })
	c, err := NewCattle(srv.URL+"/v1", testAccess, testSecret, &http.Client{Timeout: 50_000_000}) // 50ms
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListRegistries(t.Context())
	var e *Error
	if !errors.As(err, &e) || !e.Temporary() || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("err = %v, want a temporary timeout error", err)
	}
}

func TestClient_ServerGone(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	c, err := NewCattle(srv.URL+"/v2-beta", testAccess, testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListRegistries(t.Context())
	var e *Error
	if !errors.As(err, &e) || !e.Temporary() || e.StatusCode != 0 {
		t.Fatalf("err = %v, want a temporary transport error", err)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q does not say the connection was refused", err)
	}
}

func TestCredentialInput_String(t *testing.T) {
	t.Parallel()
	in := CredentialInput{RegistryID: "1sp2", PublicValue: "AWS", SecretValue: "s3cr3t", Email: "e"}
	for _, s := range []string{fmt.Sprint(in), fmt.Sprintf("%v %+v %#v %s", in, in, in, in)} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("formatted input leaks the secret: %s", s)
		}
	}
}

// BenchmarkClient_ListRegistries decodes one Cattle page of 1,000 registries in
// the real shape (escaped slashes, links, actions): the per-registry cost of a
// scope's listing.
func BenchmarkClient_ListRegistries(b *testing.B) {
	var items []string
	for i := range 1000 {
		self := fmt.Sprintf(`http:\/\/rancher.example.com:8080\/v2-beta\/projects\/1a5\/registries\/1sp%d`, i)
		items = append(items, fmt.Sprintf(`{"id":"1sp%d","type":"registry","links":{"self":"%s","credentials":"%s\/credentials"},`+
			`"actions":{"update":"%s\/?action=update"},"baseType":"storagePool","accountId":"1a5","kind":"registry",`+
			`"name":null,"description":null,"serverAddress":"registry-%d.example.com:5000","state":"active","transitioning":"no",`+
			`"created":"2017-06-01T15:04:05Z","createdTS":1496329445000,"uuid":"14a6d40d-7367-41a4-9701-e4d2eda88b96"}`, i, self, self, self, i))
	}
	body := []byte(`{"type":"collection","resourceType":"registry","data":[` + strings.Join(items, ",") + `],"pagination":{"next":null,"limit":3000,"partial":false}}`)
	srv := httptest.NewServer(serve(200, body))
	b.Cleanup(srv.Close)
	c, err := NewCattle(srv.URL+"/v2-beta/projects/1a5", testAccess, testSecret, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		regs, err := c.ListRegistries(b.Context())
		if err != nil || len(regs) != 1000 {
			b.Fatal(err)
		}
	}
}
