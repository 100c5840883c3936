package main

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// state is what the HTTP endpoints report on; *refresher.Refresher implements it.
type state interface {
	Healthy(now time.Time) bool
	Readiness(now time.Time) refresher.Readiness
}

// newHandler serves /ping (the old image's), /healthz, /readyz and /metrics.
// Nothing here can carry a secret: readiness holds hosts, scopes, times and
// error texts, which never include tokens or keys.
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
		rd := s.Readiness(time.Now())
		w.Header().Set("Content-Type", "application/json")
		if !rd.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rd)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}
