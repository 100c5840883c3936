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
		now := time.Now()
		body := readyz{Readiness: s.Readiness(now)}
		if e, ok := s.(elected); ok {
			body.Role, body.Leader, body.Ready, body.Reason = followerReadiness(e, now, body.Readiness)
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
