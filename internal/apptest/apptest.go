// Package apptest is what the daemon's end-to-end tests share: a world of
// local stand-ins (ECR, Rancher 1.x) with the AWS SDK's environment pointed
// at them and the settings that use them, and the check that no secret got
// into an output.
package apptest

import (
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
)

// The world's names and secrets: the secrets must never show in any output.
const (
	Account       = "111122223333"
	Project       = "1a5"
	RancherSecret = "rancher-secret-DO-NOT-LEAK"
	AWSSecret     = "aws-secret-DO-NOT-LEAK"
)

// World is an ECR stand-in and a Rancher 1.x stand-in on 127.0.0.1, with the
// AWS SDK's environment pointed at the former: it sets process environment,
// so tests using it do not run in parallel.
type World struct {
	ECR     *ecrtest.Server
	Rancher *ranchertest.Server
	// ECRURL and RancherURL are where they listen.
	ECRURL, RancherURL string
	// Env are the daemon's settings for them: Rancher environment Project
	// with the key ak / RancherSecret, region us-east-1, LOG_LEVEL=debug,
	// any free HTTP port.
	Env map[string]string
}

// NewWorld starts the stand-ins until the test ends.
func NewWorld(t testing.TB) *World {
	t.Helper()
	w := &World{
		ECR:     ecrtest.New(Account, "us-east-1"),
		Rancher: ranchertest.New(ranchertest.Key{Access: "ak", Secret: RancherSecret, Project: Project}),
	}
	ecrSrv := httptest.NewServer(w.ECR)
	rSrv := httptest.NewServer(w.Rancher)
	t.Cleanup(ecrSrv.Close)
	t.Cleanup(rSrv.Close)
	w.ECRURL, w.RancherURL = ecrSrv.URL, rSrv.URL
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL_ECR": ecrSrv.URL, "AWS_ACCESS_KEY_ID": "AKIDE2E", "AWS_SECRET_ACCESS_KEY": AWSSecret,
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_CONFIG_FILE": filepath.Join(dir, "config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"), "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_USE_FIPS_ENDPOINT": "", "AWS_USE_DUALSTACK_ENDPOINT": "", "AWS_WEB_IDENTITY_TOKEN_FILE": "", "AWS_ENDPOINT_URL": "",
	} {
		t.Setenv(k, v)
	}
	w.Env = map[string]string{
		"CATTLE_URL": rSrv.URL + "/v2-beta/projects/" + Project, "CATTLE_ACCESS_KEY": "ak", "CATTLE_SECRET_KEY": RancherSecret,
		"AWS_REGION": "us-east-1", "LOG_LEVEL": "debug", "LISTEN_PORT": "0",
	}
	return w
}

// EnvOf turns a map into a getenv.
func EnvOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// With returns a copy of m with k set to v.
func With(m map[string]string, k, v string) map[string]string {
	c := maps.Clone(m)
	if c == nil {
		c = map[string]string{}
	}
	c[k] = v
	return c
}

// NoSecrets fails the test when out holds any of secrets, or the world's own.
func NoSecrets(t testing.TB, out string, secrets ...string) {
	t.Helper()
	for _, s := range append(secrets, RancherSecret, AWSSecret) {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("output holds secret %q:\n%s", s, out)
		}
	}
}

// Problem is settings that must be refused: the environment, the flags, and
// what each line of the error holds (one line per entry).
type Problem struct {
	Name string
	Env  map[string]string
	Args []string
	Want []string
}

// Problems runs each case as a parallel subtest, check parsing its settings
// and wanting its lines.
func Problems(t *testing.T, cases []Problem, check func(t *testing.T, args []string, env map[string]string, want ...string)) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			check(t, c.Args, c.Env, c.Want...)
		})
	}
}

// WantLines fails the test unless err has exactly one line per entry of want,
// each entry held by some line.
func WantLines(t testing.TB, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error: the input was accepted")
	}
	if lines := strings.Split(err.Error(), "\n"); len(lines) != len(want) {
		t.Errorf("got %d lines, want %d:\n%s", len(lines), len(want), err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%s", w, err)
		}
	}
}

// Get serves a GET of path by h, returning the status and body.
func Get(t testing.TB, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}
