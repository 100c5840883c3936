// Package mototest runs moto_server (https://github.com/getmoto/moto), a
// third-party AWS emulator, for tests that drive the real AWS SDK. Without it
// installed a test skips, saying so, unless REQUIRE_MOTO=1 (as CI sets), where
// it fails.
package mototest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testskip"
)

// Account is the account moto answers as: the caller's own registry.
const Account = "123456789012"

// Start runs moto_server on a free loopback port until the test ends and
// returns its URL.
func Start(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("moto_server")
	if err != nil {
		testskip.Skip(t, testskip.Moto, "moto_server is not installed: install it with `pip install 'moto[server]'` to run this test against a real AWS emulator")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var logs bytes.Buffer
	cmd := exec.Command(path, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("http://127.0.0.1:%d", port)

	// Wait until it answers, cancellable and bounded.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/moto-api/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			return url
		}
		select {
		case <-ctx.Done():
			t.Fatalf("moto_server did not start: %v\n%s", ctx.Err(), logs.String())
		case <-tick.C:
		}
	}
}
