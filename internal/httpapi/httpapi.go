// Package httpapi serves the daemon's HTTP endpoints: /ping (the old image's),
// /healthz, /readyz and /metrics, on a server bounded so that it is safe to
// expose. See README.md, "HTTP endpoints".
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
)

// Bounds of the HTTP server, so that it is safe to expose: no connection, slow
// or idle, is held longer than these, and no header block is larger.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 30 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
	DefaultMaxHeaderBytes    = 16 << 10
)

// NewServer is the server for Handler's endpoints, with every timeout set.
func NewServer(ctx context.Context, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		ReadTimeout:       DefaultReadTimeout,
		WriteTimeout:      DefaultWriteTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
}

// Serve serves h on ln until the returned server is closed.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, log logrus.FieldLogger) *http.Server {
	srv := NewServer(ctx, h)
	log.WithField("address", ln.Addr().String()).Info("http listening")
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("http server stopped")
		}
	}()
	return srv
}

// Handler serves /ping, /healthz, /readyz and /metrics (from g). e is nil
// without leader election. Nothing here can carry a secret: readiness holds
// hosts, scopes, times and error texts, which never include tokens or keys,
// each cut to MaxReasonLen.
func Handler(s State, e Elected, g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "pong!")
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !s.Healthy(time.Now()) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "refresh loop stopped or stuck\n")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { serveReadyz(w, s, e) })
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	return mux
}

// HealthcheckURL is where the healthcheck subcommand finds the daemon: the
// address it binds (LISTEN_ADDRESS), or loopback when it binds every interface.
func HealthcheckURL(addr, port string) (string, error) {
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", fmt.Errorf("LISTEN_PORT: %q is not a port number", port)
	}
	host, err := ParseListenAddress(addr)
	if err != nil {
		return "", fmt.Errorf("LISTEN_ADDRESS: %w", err)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

var (
	portRE = regexp.MustCompile(`^[0-9]{1,5}$`)
	// hostRE is a DNS name as LISTEN_ADDRESS may give it.
	hostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)
)

// ParseListenAddress reads LISTEN_ADDRESS: an IP address (brackets allowed)
// or a host name, no port; "" binds every interface. The error says how to
// fix the value.
func ParseListenAddress(v string) (string, error) {
	v = strings.TrimSpace(v)
	ip := strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	switch {
	case v == "":
		return "", nil
	case net.ParseIP(ip) != nil:
		return ip, nil
	case hostRE.MatchString(v):
		return v, nil
	}
	if h, p, err := net.SplitHostPort(v); err == nil && (net.ParseIP(h) != nil || hostRE.MatchString(h)) && portRE.MatchString(p) {
		return "", fmt.Errorf("%q holds a port: set LISTEN_ADDRESS=%s and LISTEN_PORT=%s", v, h, p)
	}
	return "", fmt.Errorf("%q is not an IP address or host name, e.g. 127.0.0.1, ::1 or 0.0.0.0", v)
}
