package e2e

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/mototest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testproc"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

const (
	tenantA      = "arn:aws:iam::111111111111:role/team-a"
	tenantB      = "arn:aws:iam::222222222222:role/team-b"
	tenantDenied = "arn:aws:iam::333333333333:role/team-untrusting"
	tenantOut    = "arn:aws:iam::444444444444:role/outsider"
)

// An AWS identity per tenant, end to end: the daemon binary, a real
// kube-apiserver, and moto's STS and ECR behind a proxy that tells callers
// apart by their signing key (moto answers an assumed role's
// GetAuthorizationToken with the role's account as the registry host).
//
//   - Each namespace holds the registry of the identity it names: the
//     daemon's own without the annotation, its role's with it.
//   - One AssumeRole per role (session named for a namespace, AWS_ROLE_EXTERNAL_ID
//     sent) and one GetAuthorizationToken per (role, region), for three
//     namespaces of one role.
//   - A role the allow list does not name costs no AWS call and gets no Secret,
//     and says so naming the fix; a role STS denies fails only its namespace,
//     with AccessDenied and the fix, in the log, /readyz and /metrics.
//   - Adding, changing and removing the annotation rewrites the namespace's
//     Secret within seconds, from the session and tokens in hand.
//   - With AWS_ALLOWED_ROLE_ARNS empty, every annotated namespace is refused
//     (--once exits 1 naming the fix) and never gets the daemon's own.
//   - No secret in the log, /readyz, /metrics or --once's output.
func (s *motoSuite) testTenantRoles(t *testing.T) {
	srv := kubetest.Start(t)
	admin := kubetest.Clientset(t, srv.AdminConfig())
	proxy := mototest.NewProxy(t, s.motoURL)
	proxy.DenySTS(tenantDenied)
	roles := map[string]string{"tenant-own": "", "tenant-a1": tenantA, "tenant-a2": tenantA, "tenant-a3": tenantA,
		"tenant-b": tenantB, "tenant-denied": tenantDenied, "tenant-refused": tenantOut}
	for ns, role := range roles {
		obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		if role != "" {
			obj.Annotations = map[string]string{tenantrole.Annotation: role}
		}
		if _, err := admin.CoreV1().Namespaces().Create(t.Context(), obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	port := testbin.FreePort(t)
	cmd := exec.Command(s.bin)
	cmd.Env = []string{"HOME=" + dir, "KUBECONFIG=" + kubetest.WriteKubeconfig(t, srv.AdminConfig(), ""), "KUBE_NAMESPACES=tenant-*",
		"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=AKIDMOTO", "AWS_SECRET_ACCESS_KEY=" + motoAWSSecret,
		"AWS_ENDPOINT_URL_ECR=" + proxy.URL, "AWS_ENDPOINT_URL_STS=" + proxy.URL, "AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"),
		"AWS_ALLOWED_ROLE_ARNS=" + tenantA + ",arn:aws:iam::222222222222:role/team-*," + tenantDenied,
		"AWS_ROLE_EXTERNAL_ID=ext-e2e", "LISTEN_PORT=" + port, "LOG_LEVEL=debug"}
	logFile := filepath.Join(dir, "daemon.log")
	p, err := testproc.Start(cmd, logFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(10 * time.Second) })
	logs := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	hosts := func(ns string) []string { return secretHosts(t, admin, ns) }
	own, hostA, hostB := ecrHost(motoDefaultAcct, "us-east-1"), ecrHost("111111111111", "us-east-1"), ecrHost("222222222222", "us-east-1")

	testwait.For(t, 60*time.Second, "every allowed namespace written", func() bool {
		return slices.Equal(hosts("tenant-own"), []string{own}) && slices.Equal(hosts("tenant-a3"), []string{hostA}) &&
			slices.Equal(hosts("tenant-b"), []string{hostB}) && strings.Contains(logs(), "team-untrusting")
	})
	for _, ns := range []string{"tenant-a1", "tenant-a2"} {
		if got := hosts(ns); !slices.Equal(got, []string{hostA}) {
			t.Errorf("%s holds %v, want team-a's registry only", ns, got)
		}
	}
	if pw := secretPassword(t, admin, "tenant-a1", hostA); pw != s.motoPassword(t, "us-east-1", "111111111111") {
		t.Errorf("tenant-a1 holds a password that is not moto's for team-a's registry")
	}
	for _, ns := range []string{"tenant-denied", "tenant-refused"} {
		if got := hosts(ns); got != nil {
			t.Errorf("%s holds a Secret with %v, want no credential at all", ns, got)
		}
	}
	names, ext := proxy.Sessions(tenantA)
	if proxy.Assumes(tenantA) != 1 || proxy.Tokens(tenantA) != 1 || proxy.Assumes(tenantB) != 1 {
		t.Errorf("team-a: %d AssumeRole, %d GetAuthorizationToken for 3 namespaces; team-b %d AssumeRole: want 1, 1, 1",
			proxy.Assumes(tenantA), proxy.Tokens(tenantA), proxy.Assumes(tenantB))
	}
	if len(names) != 1 || !strings.HasPrefix(names[0], "tenant-a") || ext[0] != "ext-e2e" {
		t.Errorf("team-a's session %v with external id %v, want a tenant-a namespace's name and ext-e2e", names, ext)
	}
	if n := proxy.Assumes(tenantOut); n != 0 {
		t.Errorf("the refused role was assumed %d times", n)
	}

	code, readyz := httpGet(t, port, "/readyz")
	_, metrics := httpGet(t, port, "/metrics")
	type source struct {
		Identity  string `json:"identity"`
		LastError string `json:"last_error"`
	}
	var rd struct{ Sources []source }
	if err := json.Unmarshal([]byte(readyz), &rd); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz %d: %v", code, err)
	}
	denied := slices.IndexFunc(rd.Sources, func(s source) bool {
		return s.Identity == tenantDenied && strings.Contains(s.LastError, "sts AssumeRole: AccessDenied")
	})
	if denied < 0 {
		t.Errorf("/readyz does not name the denied role's source and why:\n%s", readyz)
	}
	for _, want := range []string{
		`rancher_ecr_credentials_role_assume_total{result="success",role="` + tenantA + `"} 1`,
		`rancher_ecr_credentials_role_assume_total{result="AccessDenied",role="` + tenantDenied + `"}`,
		`rancher_ecr_credentials_role_fetch_success{region="us-east-1",role="` + tenantDenied + `"} 0`,
		`rancher_ecr_credentials_role_fetch_success{region="us-east-1",role="` + tenantB + `"} 1`,
		`rancher_ecr_credentials_role_refusals_total 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, want := range []string{
		"sts AssumeRole: AccessDenied (HTTP 403)", "the role's trust policy must allow sts:AssumeRole",
		"scope tenant-refused: annotation " + tenantrole.Annotation + " names role " + tenantOut + ", which AWS_ALLOWED_ROLE_ARNS",
	} {
		if !strings.Contains(logs(), want) {
			t.Errorf("the log lacks %q", want)
		}
	}

	// The annotation added, changed, removed: rewritten at once, with the
	// session and the tokens in hand (no new AWS call for team-a).
	for _, step := range []struct {
		ns, role string
		want     []string
	}{
		{"tenant-own", tenantA, []string{hostA}},
		{"tenant-a1", "", []string{own}},
		{"tenant-refused", tenantB, []string{hostB}},
		{"tenant-b", tenantA, []string{hostA}},
	} {
		before := secretVersion(t, admin, step.ns)
		began := time.Now()
		annotate(t, admin, step.ns, step.role)
		testwait.For(t, 20*time.Second, step.ns+" rewritten for "+step.role, func() bool {
			return secretVersion(t, admin, step.ns) != before && slices.Equal(hosts(step.ns), step.want)
		})
		t.Logf("%s annotated %q: rewritten after %s", step.ns, step.role, time.Since(began).Round(time.Millisecond))
	}
	if proxy.Assumes(tenantA) != 1 || proxy.Tokens(tenantA) != 1 {
		t.Errorf("after the changes team-a had %d AssumeRole and %d GetAuthorizationToken calls, want still 1 and 1", proxy.Assumes(tenantA), proxy.Tokens(tenantA))
	}

	if err := p.Stop(10 * time.Second); err != nil || p.Err() != nil {
		t.Errorf("stop: %v, exit %v", err, p.Err())
	}

	// AWS_ALLOWED_ROLE_ARNS empty: every annotated namespace is refused,
	// named with the fix, and never gets the daemon's own credential. The
	// unannotated namespace's Secret is deleted first, so that holding the
	// daemon's own credential afterwards shows this run wrote it.
	if err := admin.CoreV1().Secrets("tenant-a1").Delete(t.Context(), secretName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	once := exec.CommandContext(t.Context(), s.bin, "--once")
	once.Env = append(slices.DeleteFunc(slices.Clone(cmd.Env), func(e string) bool { return strings.HasPrefix(e, "AWS_ALLOWED_ROLE_ARNS=") }),
		"KUBE_NAMESPACES=tenant-b,tenant-a1")
	out, err := once.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("--once with an empty allow list: %v, want exit 1", err)
	}
	if !strings.Contains(string(out), "scope tenant-b: annotation "+tenantrole.Annotation+" names role "+tenantA+", but AWS_ALLOWED_ROLE_ARNS is empty") ||
		!strings.Contains(string(out), "AWS_ALLOWED_ROLE_ARNS="+tenantA) {
		t.Errorf("--once does not name the refusal and its fix:\n%s", out)
	}
	if got := hosts("tenant-b"); slices.Contains(got, own) {
		t.Errorf("the refused namespace got the daemon's own credential: %v", got)
	}
	if got := hosts("tenant-a1"); !slices.Equal(got, []string{own}) {
		t.Errorf("the unannotated namespace holds %v", got)
	}
	secrets := []string{motoAWSSecret, s.motoPassword(t, "us-east-1", "111111111111"), s.motoPassword(t, "us-east-1", "222222222222"), s.motoPassword(t, "us-east-1", motoDefaultAcct)}
	for what, out := range map[string]string{"log": logs(), "/readyz": readyz, "/metrics": metrics, "--once": string(out)} {
		for _, sec := range secrets {
			if strings.Contains(out, sec) {
				t.Errorf("the %s holds a secret", what)
			}
		}
		if strings.Contains(out, "SessionToken") || strings.Contains(out, "SecretAccessKey") {
			t.Errorf("the %s holds an STS session", what)
		}
	}
	if t.Failed() {
		t.Log(p.Tail(60))
	}
}

func annotate(t *testing.T, admin kubernetes.Interface, ns, role string) {
	t.Helper()
	value := "null"
	if role != "" {
		value = `"` + role + `"`
	}
	patch := `{"metadata":{"annotations":{"` + tenantrole.Annotation + `":` + value + `}}}`
	if _, err := admin.CoreV1().Namespaces().Patch(t.Context(), ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// secretAuths returns the entries of ns's Secret, nil without one.
func secretAuths(t *testing.T, admin kubernetes.Interface, ns string) map[string]struct{ Password string } {
	t.Helper()
	s, err := admin.CoreV1().Secrets(ns).Get(t.Context(), secretName, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	var cfg struct {
		Auths map[string]struct{ Password string } `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Auths
}

func secretHosts(t *testing.T, admin kubernetes.Interface, ns string) []string {
	a := secretAuths(t, admin, ns)
	if a == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(a))
}

func secretPassword(t *testing.T, admin kubernetes.Interface, ns, host string) string {
	return secretAuths(t, admin, ns)[host].Password
}

func secretVersion(t *testing.T, admin kubernetes.Interface, ns string) string {
	s, err := admin.CoreV1().Secrets(ns).Get(t.Context(), secretName, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	return s.ResourceVersion
}

func httpGet(t *testing.T, port, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://127.0.0.1:"+port+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(b)
}
