package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
)

// fakeIMDS is an EC2 metadata service on 127.0.0.1 that refuses IMDSv2 tokens
// (so the SDK warns "falling back to IMDSv1") and hands out a role's keys.
func fakeIMDS(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case r.Method == http.MethodPut:
			http.Error(w, "forbidden", http.StatusForbidden)
		case strings.HasSuffix(p, "/"):
			_, _ = io.WriteString(w, "test-role")
		case strings.HasSuffix(p, "/test-role"):
			_ = json.NewEncoder(w).Encode(map[string]string{"Code": "Success", "Type": "AWS-HMAC",
				"AccessKeyId": "AKIDIMDS", "SecretAccessKey": apptest.AWSSecret, "Token": "imds-session-DO-NOT-LEAK",
				"LastUpdated": time.Now().UTC().Format(time.RFC3339), "Expiration": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// With LOG_FORMAT=json every line the process prints is the daemon's JSON,
// the AWS SDK's own warnings included.
func TestBinary_SDKLogsKeepFormat(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testbin.Binary(t)
	w := apptest.NewWorld(t)
	ecrSrv := httptest.NewServer(w.ECR)
	t.Cleanup(ecrSrv.Close)
	reg := w.Rancher.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), "")
	dir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), bin, "--once")
	cmd.Env = []string{"HOME=" + dir, "LOG_FORMAT=json", "LOG_LEVEL=debug",
		"CATTLE_URL=" + w.Env["CATTLE_URL"], "CATTLE_ACCESS_KEY=ak", "CATTLE_SECRET_KEY=" + apptest.RancherSecret,
		"AWS_REGION=us-east-1", "AWS_ENDPOINT_URL_ECR=" + ecrSrv.URL, "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + fakeIMDS(t),
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("run: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	if creds := w.Rancher.Credentials(apptest.Project); len(creds) != 1 || creds[0].RegistryID != reg {
		t.Errorf("credentials = %+v, want the one written with the instance role's keys", creds)
	}
	sdkWarned := false
	for name, out := range map[string]string{"stdout": stdout.String(), "stderr": stderr.String()} {
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var line map[string]any
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line["level"] == nil || line["msg"] == nil {
				t.Errorf("%s line is not the daemon's JSON: %s", name, sc.Text())
				continue
			}
			if line["source"] == "aws-sdk" && line["level"] == "warning" && strings.Contains(fmt.Sprint(line["msg"]), "IMDSv1") {
				sdkWarned = true
			}
		}
	}
	if !sdkWarned {
		t.Errorf("the SDK's IMDSv1 warning is not among the daemon's lines:\n%s", stderr.String())
	}
	apptest.NoSecrets(t, stdout.String()+stderr.String(), "imds-session-DO-NOT-LEAK", w.ECR.Password(apptest.Account))
}
