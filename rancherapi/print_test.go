package rancherapi

import (
	"fmt"
	"strings"
	"testing"
)

// TestClient_PrintsNoSecret: a client, and the Cattle and Norman clients that
// embed it, print no key with any verb (a %+v in a log line must be safe).
func TestClient_PrintsNoSecret(t *testing.T) {
	t.Parallel()
	c, err := NewCattle("https://rancher.example.com/v2-beta", "ak", testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	n, err := NewNorman("https://rancher.example.com/v3/project/c-a:p-b", "", "token-abc:"+testSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{c, n, c.Client, *c, *n, []any{c}, map[string]any{"c": n}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, testSecret) {
				t.Errorf("%s of %T prints the secret key: %s", verb, v, out)
			}
		}
	}
}
