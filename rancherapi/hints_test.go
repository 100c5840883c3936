package rancherapi

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A Rancher that cannot be reached, or answers in the other protocol, gets an
// error naming CATTLE_URL and the likely fix, measured against real sockets.
func TestClient_NetworkHints(t *testing.T) {
	t.Parallel()
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	tlsSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake error is expected
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hung.Close)
	// A listener that accepts and hangs up at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()

	tests := []struct {
		name, url string
		hc        *http.Client
		want      string
	}{
		{"Refused", closed.URL + "/v2-beta", nil, "nothing listens at CATTLE_URL's host and port"},
		{"HTTPSToPlainHTTP", strings.Replace(plain.URL, "http://", "https://", 1) + "/v2-beta", nil, "CATTLE_URL says https:// but the server answers plain HTTP: use http://"},
		{"HTTPToTLS", strings.Replace(tlsSrv.URL, "https://", "http://", 1) + "/v2-beta", nil, "if Rancher serves HTTPS on this port, CATTLE_URL must start with https://"},
		{"Timeout", hung.URL + "/v2-beta", &http.Client{Timeout: 50 * time.Millisecond}, "no answer in time: check CATTLE_URL's host and port"},
		{"HungUp", "http://" + ln.Addr().String() + "/v2-beta", nil, "the connection was closed without an answer: check CATTLE_URL's scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewCattle(tt.url, "ak", "sk", tt.hc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.ListRegistries(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to hold %q", err, tt.want)
			}
		})
	}
}

func TestError_DNSHint(t *testing.T) {
	t.Parallel()
	e := &Error{Method: "GET", URL: "https://rancher.example.invalid/v2-beta/registries",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "rancher.example.invalid", IsNotFound: true}}}
	if want := "CATTLE_URL's host name does not resolve"; !strings.Contains(e.Error(), want) {
		t.Errorf("error = %v, want %q", e, want)
	}
}
