package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testskip"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
)

// The moto suite drives the built binary, and through it the real AWS SDK,
// against moto_server (a third-party AWS emulator) and the Rancher stand-in.
// Without moto_server it skips, unless REQUIRE_MOTO=1 (as .ci/run sets), where a
// skip would hide that the suite never ran.

const (
	motoAWSSecret   = "moto-secret-DO-NOT-LEAK"
	motoDefaultAcct = "123456789012" // moto's own account: the caller's registry
)

type motoSuite struct {
	bin     string
	motoURL string
}

func TestIntegration_Moto(t *testing.T) {
	motoPath, err := exec.LookPath("moto_server")
	if err != nil {
		testskip.Skip(t, testskip.Moto, "moto_server is not installed: skipping the AWS integration suite (pip install 'moto[server]')")
	}
	if testing.Short() {
		t.Skip("integration suite skipped in -short mode")
	}
	s := &motoSuite{bin: testbin.Binary(t), motoURL: startMoto(t, motoPath)}

	t.Run("DefaultRegistry", s.testDefaultRegistry)
	t.Run("TwoRegistriesTwoRegions", s.testTwoRegistries)
	t.Run("AssumeRole", s.testAssumeRole)
	t.Run("NoRegistryExitsOne", s.testNoRegistry)
	t.Run("Rancher2", s.testRancher2)
	t.Run("WebIdentity", s.testWebIdentity)
}

// startMoto runs moto_server on a free loopback port until the test ends.
func startMoto(t *testing.T, path string) string {
	t.Helper()
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
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
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

// motoPassword asks moto directly, through the SDK, for the password it hands
// out for a registry, so the suite does not depend on moto's token format.
func (s *motoSuite) motoPassword(t *testing.T, region, id string) string {
	t.Helper()
	c := ecr.New(ecr.Options{Region: region, BaseEndpoint: aws.String(s.motoURL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDMOTO", motoAWSSecret, "")})
	//lint:ignore SA1019 the id selects the registry whose password is wanted
	out, err := c.GetAuthorizationToken(t.Context(), &ecr.GetAuthorizationTokenInput{RegistryIds: []string{id}})
	if err != nil || len(out.AuthorizationData) != 1 {
		t.Fatalf("moto GetAuthorizationToken: %v", err)
	}
	raw, _ := base64.StdEncoding.DecodeString(*out.AuthorizationData[0].AuthorizationToken)
	_, pw, _ := strings.Cut(string(raw), ":")
	return pw
}

// runOnce starts the binary with --once and a clean environment plus extra.
func (s *motoSuite) runOnce(t *testing.T, rancherURL string, extra ...string) (string, int) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), s.bin, "--once")
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"CATTLE_URL=" + rancherURL, "CATTLE_ACCESS_KEY=ak", "CATTLE_SECRET_KEY=" + apptest.RancherSecret,
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDMOTO", "AWS_SECRET_ACCESS_KEY=" + motoAWSSecret,
		"AWS_ENDPOINT_URL_ECR=" + s.motoURL, "AWS_ENDPOINT_URL_STS=" + s.motoURL,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=" + filepath.Join(dir, "none"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"), "LOG_LEVEL=debug",
	}, extra...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func newRancher(t *testing.T) (*ranchertest.Server, string) {
	t.Helper()
	rs := ranchertest.New(ranchertest.Key{Access: "ak", Secret: apptest.RancherSecret, Project: apptest.Project})
	srv := httptest.NewServer(rs)
	t.Cleanup(srv.Close)
	return rs, srv.URL + "/v1/projects/" + apptest.Project
}

func ecrHost(id, region string) string { return fmt.Sprintf("%s.dkr.ecr.%s.amazonaws.com", id, region) }

func (s *motoSuite) testDefaultRegistry(t *testing.T) {
	rs, url := newRancher(t)
	reg := rs.AddRegistry(apptest.Project, ecrHost(motoDefaultAcct, "us-east-1"), "")
	cred := rs.AddCredential(apptest.Project, reg, "AWS", "stale", "")
	out, code := s.runOnce(t, url)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	want := s.motoPassword(t, "us-east-1", motoDefaultAcct)
	if c, _ := rs.Credential(cred); c.SecretValue != want || c.PublicValue != "AWS" || c.Email == "" {
		t.Errorf("credential = %+v, want moto's password and an email (/v1)", c)
	}
	// moto's expiresAt is 2015-01-01: one warning, no failure.
	if got := strings.Count(out, "assuming a 12h token"); got != 1 {
		t.Errorf("clamp warnings = %d, want 1:\n%s", got, out)
	}
	apptest.NoSecrets(t, out, want, motoAWSSecret)
}

func (s *motoSuite) testTwoRegistries(t *testing.T) {
	rs, url := newRancher(t)
	a, b := ecrHost("111122223333", "us-east-1"), ecrHost("555566667777", "eu-west-1")
	reg := rs.AddRegistry(apptest.Project, a, "")
	cred := rs.AddCredential(apptest.Project, reg, "AWS", "stale", "")
	out, code := s.runOnce(t, url, "AWS_ECR_REGISTRY_IDS=111122223333,555566667777:eu-west-1", "AUTO_CREATE=true")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if c, _ := rs.Credential(cred); c.SecretValue != s.motoPassword(t, "us-east-1", "111122223333") {
		t.Errorf("existing credential not updated in place: %+v", c)
	}
	regs := rs.Registries(apptest.Project)
	if len(regs) != 2 || regs[1].ServerAddress != b {
		t.Fatalf("registries = %+v, want %s auto-created", regs, b)
	}
	creds := rs.Credentials(apptest.Project)
	if len(creds) != 2 || creds[1].RegistryID != regs[1].ID || creds[1].SecretValue != s.motoPassword(t, "eu-west-1", "555566667777") {
		t.Errorf("credentials = %+v", creds)
	}
	apptest.NoSecrets(t, out, motoAWSSecret, creds[0].SecretValue, creds[1].SecretValue)
}

// moto answers an assumed role's calls in the role's account, so the caller's
// own registry becomes the role's: proof the role was assumed through STS.
func (s *motoSuite) testAssumeRole(t *testing.T) {
	rs, url := newRancher(t)
	roleAcct := "210987654321"
	reg := rs.AddRegistry(apptest.Project, ecrHost(roleAcct, "us-east-1"), "")
	rs.AddRegistry(apptest.Project, ecrHost(motoDefaultAcct, "us-east-1"), "")
	out, code := s.runOnce(t, url, "AWS_ROLE_ARN=arn:aws:iam::"+roleAcct+":role/ecr-read", "AWS_ROLE_EXTERNAL_ID=ext-1")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	creds := rs.Credentials(apptest.Project)
	if len(creds) != 1 || creds[0].RegistryID != reg {
		t.Fatalf("credentials = %+v, want one, for the role's account %s only", creds, roleAcct)
	}
	apptest.NoSecrets(t, out, motoAWSSecret, creds[0].SecretValue)
}

func (s *motoSuite) testNoRegistry(t *testing.T) {
	rs, url := newRancher(t)
	rs.AddRegistry(apptest.Project, "index.docker.io", "")
	out, code := s.runOnce(t, url)
	if code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, out)
	}
	if !strings.Contains(out, "add a registry with server address "+ecrHost(motoDefaultAcct, "us-east-1")) {
		t.Errorf("output does not name the fix:\n%s", out)
	}
	if len(rs.Credentials(apptest.Project)) != 0 {
		t.Errorf("something was written")
	}
}

// Rancher 2.x: a project-scoped dockerCredential per registry, created, then
// updated in place by a second run.
func (s *motoSuite) testRancher2(t *testing.T) {
	rs := ranchertest.New(ranchertest.Key{Access: "token-moto", Secret: apptest.RancherSecret, Projects: []string{"*"}})
	rs.AddProject("c-abcde:p-fghij")
	srv := httptest.NewServer(rs)
	t.Cleanup(srv.Close)
	kept := rs.AddDockerCredential("c-abcde:p-fghij", "hub", map[string]ranchertest.Auth{"index.docker.io": {Username: "someone", Password: "hub-password"}})
	for run := 1; run <= 2; run++ {
		out, code := s.runOnce(t, srv.URL+"/v3/project/c-abcde:p-fghij", "CATTLE_ACCESS_KEY=", "CATTLE_SECRET_KEY=token-moto:"+apptest.RancherSecret,
			"AWS_ECR_REGISTRY_IDS=111122223333")
		if code != 0 {
			t.Fatalf("run %d: exit %d:\n%s", run, code, out)
		}
		apptest.NoSecrets(t, out, motoAWSSecret, "hub-password")
	}
	creds := rs.DockerCredentials("c-abcde:p-fghij")
	if len(creds) != 2 {
		t.Fatalf("credentials = %+v, want hub and ours", creds)
	}
	ours := creds[0]
	if a := ours.Registries[ecrHost("111122223333", "us-east-1")]; ours.Name != "ecr-111122223333-us-east-1" || a.Password != s.motoPassword(t, "us-east-1", "111122223333") {
		t.Errorf("our credential = %+v", ours)
	}
	if creds[1].ID != kept || creds[1].Writes != 0 {
		t.Errorf("the hand-kept credential was written: %+v", creds[1])
	}
}

// IRSA: with AWS_WEB_IDENTITY_TOKEN_FILE set, AWS_ROLE_ARN belongs to the SDK's
// web-identity chain (AssumeRoleWithWebIdentity, no static keys at all); the
// registry written is the role's account's.
func (s *motoSuite) testWebIdentity(t *testing.T) {
	rs, url := newRancher(t)
	roleAcct := "222233334444"
	reg := rs.AddRegistry(apptest.Project, ecrHost(roleAcct, "us-east-1"), "")
	jwt := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwt, []byte("eyJhbGciOiJub25lIn0.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQifQ."), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := s.runOnce(t, url, "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_WEB_IDENTITY_TOKEN_FILE="+jwt,
		"AWS_ROLE_ARN=arn:aws:iam::"+roleAcct+":role/irsa")
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if creds := rs.Credentials(apptest.Project); len(creds) != 1 || creds[0].RegistryID != reg {
		t.Errorf("credentials = %+v, want one for the role's account %s", creds, roleAcct)
	}
}
