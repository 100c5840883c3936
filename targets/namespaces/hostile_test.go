package kube_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/kube"
)

// A server that echoes the request (decoded) into its error (a hostile proxy in front of
// the API server) puts no password into the error the daemon logs, and a huge
// message is cut.
func TestWriter_EchoingServerLeaksNothing(t *testing.T) {
	t.Parallel()
	const password = "short-pw-DO-NOT-LEAK"
	for name, status := range map[string]int{"Invalid": http.StatusUnprocessableEntity, "Forbidden": http.StatusForbidden, "ServerError": http.StatusInternalServerError} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				sent := string(body)
				var js struct {
					Data map[string][]byte `json:"data"`
				}
				if json.Unmarshal(body, &js) == nil { // JSON carries the data base64'd: echo it decoded
					sent = string(js.Data[".dockerconfigjson"])
				}
				if i := strings.Index(sent, `{"auths"`); i >= 0 { // quote the offending field, as a validator would
					sent = sent[i:]
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_ = json.NewEncoder(w).Encode(map[string]any{
					"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status,
					"message": "you sent: " + strings.ToValidUTF8(sent, "?") + " " + strings.Repeat("x", 900_000),
				})
			}))
			defer api.Close()
			w := kube.NewWriter(client(t, kube.Prepare(&rest.Config{Host: api.URL}, "test/1")).CoreV1())
			_, err := w.Apply(t.Context(), "team-a", "ecr-credentials", map[string]string{kube.ManagedByLabel: kube.ManagedBy},
				map[string]kube.Auth{"111122223333.dkr.ecr.us-east-1.amazonaws.com": {Username: "AWS", Password: password}}, nil)
			if err == nil {
				t.Fatal("no error from a failing server")
			}
			if msg := err.Error(); strings.Contains(msg, password) || strings.Contains(msg, "QVdTOnNob3J0") || len(msg) > 2000 {
				t.Errorf("error holds what was sent, or is unbounded (%d bytes): %.400s", len(msg), msg)
			}
		})
	}
}
