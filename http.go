package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// Bounds of the HTTP server, so that it is safe to expose: no connection, slow
// or idle, is held longer than these, and no header block is larger.
const (
	DefaultHTTPReadHeaderTimeout = 5 * time.Second
	DefaultHTTPReadTimeout       = 10 * time.Second
	DefaultHTTPWriteTimeout      = 30 * time.Second
	DefaultHTTPIdleTimeout       = 30 * time.Second
	DefaultHTTPMaxHeaderBytes    = 16 << 10
	// maxReasonLen caps each error text /readyz shows: a reason, not a transcript.
	maxReasonLen = 300
)

// newHTTPServer is the server for newHandler's endpoints, with every timeout set.
func newHTTPServer(ctx context.Context, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: DefaultHTTPReadHeaderTimeout,
		ReadTimeout:       DefaultHTTPReadTimeout,
		WriteTimeout:      DefaultHTTPWriteTimeout,
		IdleTimeout:       DefaultHTTPIdleTimeout,
		MaxHeaderBytes:    DefaultHTTPMaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
}

// healthcheckURL is where the healthcheck subcommand finds the daemon: the
// address it binds, or loopback when it binds every interface.
func healthcheckURL(addr, port string) (string, error) {
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", fmt.Errorf("LISTEN_PORT: %q is not a port number", port)
	}
	var err error
	host := parseListenAddress(addr, func(env, format string, args ...any) {
		err = fmt.Errorf("%s: "+format, append([]any{env}, args...)...)
	})
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/healthz", nil
}

// state is what the HTTP endpoints report on; *refresher.Refresher implements it.
type state interface {
	Healthy(now time.Time) bool
	Readiness(now time.Time) refresher.Readiness
}

// elected is a state with leader election (LEADER_ELECTION).
type elected interface {
	Role(now time.Time) (role, leader string, fresh bool)
}

// readyz is the /readyz body: the refresher's readiness, and with leader
// election this replica's role and the leader.
type readyz struct {
	refresher.Readiness
	Role   string `json:"role,omitempty"`
	Leader string `json:"leader,omitempty"`
}

// followerReadiness: the leader is ready as the refresher says. A follower
// writes nothing, so its own readiness says nothing; it is ready while some
// replica holds a lease renewed within the lease duration (a two-replica
// Deployment then neither flaps nor looks healthy with no leader writing).
// The leader's write failures show on the leader alone.
func followerReadiness(e elected, now time.Time, rd refresher.Readiness) (role, leader string, ready bool, reason string) {
	role, leader, fresh := e.Role(now)
	switch {
	case role == "leader":
		return role, leader, rd.Ready, rd.Reason
	case fresh:
		return role, leader, true, ""
	case leader == "":
		return role, leader, false, "follower: no replica holds the lease"
	default:
		return role, leader, false, "follower: the leader " + leader + " has not renewed the lease within its duration"
	}
}

// newHandler serves /ping (the old image's), /healthz, /readyz and /metrics.
// Nothing here can carry a secret: readiness holds hosts, scopes, times and
// error texts, which never include tokens or keys, each cut to maxReasonLen.
func newHandler(s state, reg *prometheus.Registry) http.Handler {
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
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		now := time.Now()
		body := readyz{Readiness: shortReasons(s.Readiness(now))}
		if e, ok := s.(elected); ok {
			body.Role, body.Leader, body.Ready, body.Reason = followerReadiness(e, now, body.Readiness)
			body.Reason = cut(body.Reason)
		}
		w.Header().Set("Content-Type", "application/json")
		if !body.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(body)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// shortReasons cuts every error text of rd to maxReasonLen bytes, on a rune
// boundary, without touching the caller's slices.
func shortReasons(rd refresher.Readiness) refresher.Readiness {
	rd.Reason = cut(rd.Reason)
	rd.Pairs = slices.Clone(rd.Pairs)
	for i := range rd.Pairs {
		rd.Pairs[i].LastError = cut(rd.Pairs[i].LastError)
	}
	rd.Sources = slices.Clone(rd.Sources)
	for i := range rd.Sources {
		rd.Sources[i].LastError = cut(rd.Sources[i].LastError)
	}
	return rd
}

func cut(s string) string {
	if len(s) <= maxReasonLen {
		return s
	}
	n := maxReasonLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
