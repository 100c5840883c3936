package kubesecret_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// A server that echoes the request (decoded) into its error — a hostile proxy
// in front of the API server — puts no password into the error the daemon
// logs, on a create, on an update rebuilt from the record and on a dry run;
// a huge message is cut.
func TestWriter_EchoingServerLeaksNothing(t *testing.T) {
	t.Parallel()
	const password = "short-pw-DO-NOT-LEAK"
	for name, status := range map[string]int{"Invalid": http.StatusUnprocessableEntity, "Forbidden": http.StatusForbidden, "ServerError": http.StatusInternalServerError} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				w.Header().Set("Content-Type", "application/json")
				if r.Method == http.MethodPost && strings.Contains(string(body), "first-pw") {
					// The first create succeeds, so the next write is an update from the record.
					w.WriteHeader(http.StatusCreated)
					_, _ = io.WriteString(w, `{"kind":"Secret","apiVersion":"v1","metadata":{"name":"ecr-credentials","namespace":"team-a","resourceVersion":"7"},"type":"kubernetes.io/dockerconfigjson"}`)
					return
				}
				sent := string(body)
				var js struct {
					Data map[string][]byte `json:"data"`
				}
				if json.Unmarshal(body, &js) == nil { // JSON carries the data base64'd: echo it decoded (protobuf carries it raw)
					sent = string(js.Data[".dockerconfigjson"])
				}
				if i := strings.Index(sent, `{"auths"`); i >= 0 { // quote the offending field, as a validator would
					sent = sent[i:]
				}
				w.WriteHeader(status)
				_ = json.NewEncoder(w).Encode(map[string]any{
					"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status,
					"message": "you sent: " + strings.ToValidUTF8(sent, "?") + " " + strings.Repeat("x", 900_000),
				})
			}))
			defer api.Close()
			c := kubetest.Clientset(t, kubeapi.Prepare(&rest.Config{Host: api.URL}, kubeapi.Options{UserAgent: "test/1"})).CoreV1()
			w := kubesecret.NewWriter(func(ns string) kubesecret.SecretsAPI { return c.Secrets(ns) })
			write := func(pw string, f func() (refresher.Result, error)) {
				t.Helper()
				_, err := f()
				if err == nil {
					t.Fatal("no error from a failing server")
				}
				if msg := err.Error(); strings.Contains(msg, pw) || strings.Contains(msg, "QVdTOnNob3J0") || len(msg) > 2000 {
					t.Errorf("error holds what was sent, or is unbounded (%d bytes): %.400s", len(msg), msg)
				}
			}
			args := func(pw string) (string, string, map[string]string, map[string]kubesecret.Auth) {
				return "team-a", "ecr-credentials", map[string]string{kubesecret.ManagedByLabel: kubesecret.ManagedBy},
					map[string]kubesecret.Auth{host: {Username: "AWS", Password: pw}}
			}
			apply := func(pw string) func() (refresher.Result, error) {
				return func() (refresher.Result, error) {
					ns, n, l, a := args(pw)
					return w.Apply(t.Context(), ns, n, l, a, nil)
				}
			}
			write(password, apply(password)) // create
			write(password, func() (refresher.Result, error) {
				ns, n, l, a := args(password)
				return w.Check(t.Context(), ns, n, l, a, nil)
			})
			if _, err := apply("first-pw")(); err != nil {
				t.Fatalf("the stand-in's create: %v", err)
			}
			write(password, apply(password)) // update from the record
		})
	}
}

// A server that echoes the update it refuses — the decoded data, the Docker
// config with the password in it — puts no password into the FieldWriter's
// error, for either format.
func TestFieldWriter_EchoingServerLeaksNothing(t *testing.T) {
	t.Parallel()
	const password = "consumer-pw-DO-NOT-LEAK"
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, `{"kind":"Secret","apiVersion":"v1","metadata":{"name":"repo","namespace":"argocd","resourceVersion":"7"},"type":"Opaque","data":{"config.json":"e30="}}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var js struct {
			Data map[string][]byte `json:"data"`
		}
		_ = json.Unmarshal(body, &js)
		var echo []string
		for k, v := range js.Data {
			echo = append(echo, k+"="+string(v))
		}
		w.WriteHeader(http.StatusUnprocessableEntity)
		_ = json.NewEncoder(w).Encode(map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422,
			"message": "you sent: " + strings.Join(echo, " ") + " raw: " + string(body)})
	}))
	defer api.Close()
	c := kubetest.Clientset(t, kubeapi.Prepare(&rest.Config{Host: api.URL}, kubeapi.Options{UserAgent: "test/1"})).CoreV1()
	w := kubesecret.NewFieldWriter(func(ns string) kubesecret.SecretsAPI { return c.Secrets(ns) })
	a := kubesecret.Auth{Username: "AWS", Password: password}
	for _, e := range []kubesecret.Edit{kubesecret.BasicAuth(a), kubesecret.DockerConfig("config.json", "registry.example.com", a)} {
		_, err := w.Apply(t.Context(), "argocd", "repo", e)
		if err == nil {
			t.Fatal("no error from a refusing server")
		}
		if s := err.Error(); strings.Contains(s, password) || strings.Contains(s, "QVdTOmNvbnN1bWVy") || !strings.Contains(s, "you sent") {
			t.Errorf("the error shows the password or is not the server's: %.300s", s)
		}
	}
}
