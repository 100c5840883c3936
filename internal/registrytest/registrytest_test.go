package registrytest_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/registrytest"
)

const (
	ecrHost    = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	publicHost = "public.ecr.aws"
)

// dockerConfig is a .dockerconfigjson holding entries, as the daemon writes
// them (username, password and auth) or only auth.
func dockerConfig(entries map[string][2]string, withAuthOnly bool) []byte {
	var b bytes.Buffer
	b.WriteString(`{"auths":{`)
	first := true
	for host, up := range entries {
		if !first {
			b.WriteString(",")
		}
		first = false
		auth := base64.StdEncoding.EncodeToString([]byte(up[0] + ":" + up[1]))
		if withAuthOnly {
			fmt.Fprintf(&b, "%q:{%q:%q}", host, "auth", auth)
			continue
		}
		fmt.Fprintf(&b, "%q:{%q:%q,%q:%q,%q:%q}", host, "username", up[0], "password", up[1], "auth", auth)
	}
	b.WriteString("}}")
	return b.Bytes()
}

// The harness itself: each registry accepts for AWS only the password it was
// last told, per host; a pull with it returns the chart pushed, through the
// registry's host name; an earlier password, a password of another host, no
// password at all are refused with 401.
func TestNet(t *testing.T) {
	t.Parallel()
	n := registrytest.Start(t, ecrHost, publicHost)
	ctx := t.Context()
	ref := ecrHost + "/charts/demo:0.1.0"
	pubRef := publicHost + "/team/demo:0.2.0"
	chart, err := n.PushChart(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	pubChart, err := n.PushChart(ctx, pubRef)
	if err != nil {
		t.Fatal(err)
	}

	if err := n.Registry(ecrHost).Accept("AWS", "PASSWORD-1"); err != nil {
		t.Fatal(err)
	}
	if err := n.Registry(publicHost).Accept("AWS", "PUBLIC-1"); err != nil {
		t.Fatal(err)
	}
	if got, err := n.Pull(ctx, ref, "AWS", "PASSWORD-1"); err != nil || !bytes.Equal(got, chart) {
		t.Fatalf("pull with the accepted password: %v (same chart: %v)", err, bytes.Equal(got, chart))
	}
	if got, err := n.Pull(ctx, pubRef, "AWS", "PUBLIC-1"); err != nil || !bytes.Equal(got, pubChart) {
		t.Fatalf("pull from public.ecr.aws: %v (same chart: %v)", err, bytes.Equal(got, pubChart))
	}
	// A refresh: only the new password is accepted from now on.
	if err := n.Registry(ecrHost).Accept("AWS", "PASSWORD-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Pull(ctx, ref, "AWS", "PASSWORD-2"); err != nil {
		t.Errorf("pull with the new password: %v", err)
	}
	for name, try := range map[string]func() error{
		"EarlierPassword":    func() error { return n.Login(ctx, ecrHost, "AWS", "PASSWORD-1") },
		"OtherHostsPassword": func() error { _, err := n.Pull(ctx, ref, "AWS", "PUBLIC-1"); return err },
		"OtherUser":          func() error { return n.Login(ctx, ecrHost, "aws", "PASSWORD-2") },
		"NoCredential":       func() error { _, err := n.PullWithDockerConfig(ctx, ref, []byte(`{"auths":{}}`)); return err },
		"ConfigOfAnotherHost": func() error {
			_, err := n.PullWithDockerConfig(ctx, ref, dockerConfig(map[string][2]string{publicHost: {"AWS", "PASSWORD-2"}}, false))
			return err
		},
		"StaleDockerConfig": func() error {
			_, err := n.PullWithDockerConfig(ctx, ref, dockerConfig(map[string][2]string{ecrHost: {"AWS", "PASSWORD-1"}}, false))
			return err
		},
	} {
		if err := try(); !registrytest.IsUnauthorized(err) {
			t.Errorf("%s: %v, want 401 Unauthorized", name, err)
		}
	}
	// A Docker config is read as clients read one: by host, from
	// username/password or from auth alone.
	for _, authOnly := range []bool{false, true} {
		cfg := dockerConfig(map[string][2]string{ecrHost: {"AWS", "PASSWORD-2"}, publicHost: {"AWS", "PUBLIC-1"}}, authOnly)
		if got, err := n.PullWithDockerConfig(ctx, ref, cfg); err != nil || !bytes.Equal(got, chart) {
			t.Errorf("pull with a Docker config (auth only: %v): %v", authOnly, err)
		}
		if _, err := n.PullWithDockerConfig(ctx, pubRef, cfg); err != nil {
			t.Errorf("pull from public.ecr.aws with a Docker config (auth only: %v): %v", authOnly, err)
		}
	}
}

// The proxy tunnels only to the registries' hosts: nothing else is reached
// through it, so a client cannot silently pull from the internet instead.
func TestNet_ProxyRefusesOtherHosts(t *testing.T) {
	t.Parallel()
	n := registrytest.Start(t, publicHost)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "https://registry.example.com/v2/", nil)
	resp, err := (&http.Client{Transport: n.Transport()}).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("GET through the proxy to another host: %s, want a refused CONNECT", resp.Status)
	}
}
