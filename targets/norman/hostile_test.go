package norman_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// A write redirected to another origin is not sent there and fails, naming
// CATTLE_URL; nothing is created.
func TestTarget_RedirectedWriteFails(t *testing.T) {
	t.Parallel()
	for _, status := range []int{302, 307, 308} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			var mu sync.Mutex
			var seen []string
			evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, r.Method+" "+r.URL.String())
			}))
			t.Cleanup(evil.Close)
			e.rancher.SetIntercept(ranchertest.RedirectWrites(evil.URL, status))
			o, err := e.run(t, []refresher.Token{tokA, tokB})
			if err != nil {
				t.Fatal(err)
			}
			err = o.Err()
			if err == nil || !strings.Contains(err.Error(), "redirected to "+evil.URL) || !strings.Contains(err.Error(), "CATTLE_URL") {
				t.Fatalf("pass = %v, want a refused redirect to %s naming CATTLE_URL", err, evil.URL)
			}
			if o.Count(refresher.ResultFailed) != 2 {
				t.Errorf("results = %v, want both writes failed", o.Results)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 0 {
				t.Errorf("the other origin received %q", seen)
			}
			if n := len(e.rancher.DockerCredentials(p1)); n != 0 {
				t.Errorf("%d dockerCredentials created", n)
			}
		})
	}
}

// A server that echoes the request (passwords included) into its errors puts
// no secret into the log or the error, and no line grows past a few KB.
func TestTarget_EchoingServerLeaksNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.rancher.SetIntercept(ranchertest.EchoWrites)
	o, err := e.run(t, []refresher.Token{tokA, tokB})
	if err == nil {
		err = o.Err()
	}
	if err == nil || !strings.Contains(err.Error(), "422") {
		t.Fatalf("pass = %v, want the 422", err)
	}
	for what, text := range map[string]string{"log": e.log.String(), "error": err.Error()} {
		noSecrets(t, what, text, "pw-A", "pw-B")
		for _, line := range strings.Split(text, "\n") {
			if len(line) > 4096 {
				t.Errorf("%s has a %d-byte line: %.200q…", what, len(line), line)
			}
		}
	}
}
