package ranchertest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
)

// Faults to install with SetIntercept: what a hostile or misconfigured
// server does to a client's writes.

// IsWrite reports whether r writes (PUT or POST).
func IsWrite(r *http.Request) bool { return r.Method == http.MethodPut || r.Method == http.MethodPost }

// EchoWrites answers every write with a 422 whose code, message and
// fieldName echo the request's body and Authorization header, after a
// 900 KB code: no secret may reach a log line or an error from it, and no
// line may grow past a few KB.
func EchoWrites(w http.ResponseWriter, r *http.Request) bool {
	if !IsWrite(r) {
		return false
	}
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnprocessableEntity)
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "error", "status": 422,
		"code":      strings.Repeat("X", 900<<10) + string(b),
		"message":   "you sent " + string(b) + " with " + r.Header.Get("Authorization"),
		"fieldName": string(b)})
	return true
}

// RedirectWrites redirects every write, with status, to the same path on
// origin: a client must not follow it there.
func RedirectWrites(origin string, status int) func(http.ResponseWriter, *http.Request) bool {
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !IsWrite(r) {
			return false
		}
		http.Redirect(w, r, origin+r.URL.RequestURI(), status)
		return true
	}
}
