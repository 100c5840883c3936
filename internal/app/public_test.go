package app

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/httpapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
)

// publicWorld is a real kube-apiserver with namespaces, an ECR stand-in for
// eu-west-1 at AWS_ENDPOINT_URL_ECR and another, for ECR Public, at
// AWS_ENDPOINT_URL_ECR_PUBLIC, and the settings of a Kubernetes-only daemon
// with AWS_ECR_PUBLIC=true. The two stand-ins are apart so that each
// variable is proven to route its own service; ECR Public's refuses a call
// signed for any region but us-east-1, as AWS does.
type publicWorld struct {
	ecr, public *ecrtest.Server
	admin       kubernetes.Interface
	env         map[string]string
}

func newPublicWorld(t *testing.T, namespaces ...string) *publicWorld {
	t.Helper()
	srv := kubetest.Start(t)
	w := &publicWorld{admin: kubetest.Clientset(t, srv.AdminConfig())}
	for _, ns := range namespaces {
		if _, err := w.admin.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	apptest.NewWorld(t) // the AWS SDK's environment: static keys, no files, no IMDS
	w.ecr, w.public = ecrtest.New(apptest.Account, "eu-west-1"), ecrtest.New("999999999999", "us-east-1")
	for env, s := range map[string]*ecrtest.Server{"AWS_ENDPOINT_URL_ECR": w.ecr, "AWS_ENDPOINT_URL_ECR_PUBLIC": w.public} {
		hs := httptest.NewServer(s)
		t.Cleanup(hs.Close)
		t.Setenv(env, hs.URL)
	}
	t.Setenv("KUBECONFIG", kubetest.WriteKubeconfig(t, srv.AdminConfig(), "default"))
	w.env = map[string]string{"KUBE_NAMESPACES": strings.Join(namespaces, ","), "AWS_REGION": "eu-west-1", "AWS_ECR_PUBLIC": "true", "LOG_LEVEL": "debug"}
	return w
}

// auths reads the Secret the daemon writes into ns as a kubelet does: the
// .dockerconfigjson's auths, by host.
func (w *publicWorld) auths(t *testing.T, ns string) map[string]dockerAuth {
	t.Helper()
	s, err := w.admin.CoreV1().Secrets(ns).Get(t.Context(), "ecr-credentials", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Secret in %s: %v", ns, err)
	}
	var cfg struct {
		Auths map[string]dockerAuth `json:"auths"`
	}
	if s.Type != corev1.SecretTypeDockerConfigJson || json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg) != nil {
		t.Fatalf("the Secret in %s is not a Docker config: %s %s", ns, s.Type, s.Data[corev1.DockerConfigJsonKey])
	}
	return cfg.Auths
}

type dockerAuth struct{ Username, Password, Auth string }

// wantAuth checks one entry: user AWS, the password, and auth as a Docker
// client reads it.
func wantAuth(t *testing.T, auths map[string]dockerAuth, host, password string) {
	t.Helper()
	a, ok := auths[host]
	if !ok || a.Username != "AWS" || a.Password != password || a.Auth != base64.StdEncoding.EncodeToString([]byte("AWS:"+password)) {
		t.Errorf("entry %s: present %v, user %q, password matches %v, auth matches %v", host, ok, a.Username, a.Password == password,
			a.Auth == base64.StdEncoding.EncodeToString([]byte("AWS:"+password)))
	}
}

// AWS_ECR_PUBLIC=true on a real kube-apiserver: one --once writes
// public.ecr.aws beside the ECR host into each namespace's Secret, with the
// token ECR Public handed out: one ECR Public call, signed for us-east-1
// although AWS_REGION is eu-west-1, sent where AWS_ENDPOINT_URL_ECR_PUBLIC
// says. The start line says it is on; no token reaches the logs.
func TestRun_ECRPublic(t *testing.T) {
	w := newPublicWorld(t, "pub-a", "pub-b")
	_, logs, err := run(t.Context(), w.env, "--once")
	if err != nil {
		t.Fatalf("--once: %v\n%s", err, logs)
	}
	if w.public.PublicCalls() != 1 || w.public.Calls() != 1 || w.ecr.PublicCalls() != 0 || w.ecr.Calls() != 1 {
		t.Errorf("ECR Public stand-in: %d calls (%d ECR Public); ECR stand-in: %d calls (%d ECR Public); want 1 (1), 1 (0)",
			w.public.Calls(), w.public.PublicCalls(), w.ecr.Calls(), w.ecr.PublicCalls())
	}
	for _, ns := range []string{"pub-a", "pub-b"} {
		auths := w.auths(t, ns)
		if len(auths) != 2 {
			t.Errorf("%s holds %d hosts, want the ECR host and public.ecr.aws", ns, len(auths))
		}
		wantAuth(t, auths, "public.ecr.aws", w.public.PublicPassword())
		wantAuth(t, auths, w.ecr.Host(apptest.Account), w.ecr.Password(apptest.Account))
	}
	if !strings.Contains(logs, `msg=starting`) || !strings.Contains(logs, "aws_ecr_public=true") {
		t.Errorf("the start line does not say AWS_ECR_PUBLIC is on:\n%s", logs)
	}
	apptest.NoSecrets(t, logs, w.public.PublicPassword(), w.ecr.Password(apptest.Account))
}

// ECR Public down fails public.ecr.aws only: the ECR host is written, the run
// fails (exit 1) with one line naming ECR Public, its code and the fix, and an
// earlier public.ecr.aws entry is kept as it was, never removed. Nothing
// echoed by the failing service reaches the logs.
func TestRun_ECRPublicDown(t *testing.T) {
	w := newPublicWorld(t, "pub-down")
	_, logs, err := run(t.Context(), w.env, "--once")
	if err != nil {
		t.Fatalf("first --once: %v\n%s", err, logs)
	}
	kept := w.public.PublicPassword()
	for _, fault := range []struct {
		name, code, says string
		status           int
	}{
		{"Refused", "AccessDeniedException", "(ECR Public needs ecr-public:GetAuthorizationToken and sts:GetServiceBearerToken)", 400},
		{"ServerError", "ServerException", "ServerException (HTTP 500)", 500},
	} {
		t.Run(fault.name, func(t *testing.T) {
			w.public.SetIntercept(func(rw http.ResponseWriter, r *http.Request) bool {
				ecrtest.WriteError(rw, fault.status, fault.code, "echo "+r.Header.Get("Authorization")+" "+kept)
				return true
			})
			_, logs, err := run(t.Context(), w.env, "--once")
			if exitCode(err) != 1 {
				t.Fatalf("--once with ECR Public failing: %v, want exit 1\n%s", err, logs)
			}
			auths := w.auths(t, "pub-down")
			wantAuth(t, auths, w.ecr.Host(apptest.Account), w.ecr.Password(apptest.Account))
			wantAuth(t, auths, "public.ecr.aws", kept)
			var lines []string
			for _, l := range strings.Split(logs, "\n") {
				if strings.Contains(l, "level=error") && strings.Contains(l, "ECR Public public.ecr.aws in us-east-1") {
					lines = append(lines, l)
				}
			}
			if len(lines) == 0 || !strings.Contains(strings.Join(lines, "\n"), fault.says) {
				t.Errorf("no error line names ECR Public and says %q:\n%s", fault.says, logs)
			}
			if !strings.Contains(logs, "secret written") {
				t.Errorf("the ECR host was not written while ECR Public failed:\n%s", logs)
			}
			apptest.NoSecrets(t, logs, kept, w.ecr.Password(apptest.Account), "Signature=")
		})
	}
}

// Rancher 1.x, daemon as wired: with ECR Public refusing, the ECR host is
// written and ready while /readyz says 503 naming ECR Public and the fix,
// and ecr_errors_total counts its code in us-east-1; once ECR Public
// answers, public.ecr.aws is written into the environment like any ECR host
// (AUTO_CREATE makes its registry) and the daemon is ready.
func TestDaemon_ECRPublicReadiness(t *testing.T) {
	w := apptest.NewWorld(t)
	t.Setenv("AWS_ENDPOINT_URL_ECR_PUBLIC", w.ECRURL)
	w.Env["AWS_ECR_PUBLIC"], w.Env["AUTO_CREATE"] = "true", "true"
	w.Rancher.AddCredential(apptest.Project, w.Rancher.AddRegistry(apptest.Project, w.ECR.Host(apptest.Account), ""), "AWS", "old", "")
	w.ECR.SetIntercept(func(rw http.ResponseWriter, r *http.Request) bool {
		if !ecrtest.IsPublic(r) {
			return false
		}
		ecrtest.WriteError(rw, 400, "AccessDeniedException", "User: arn:aws:iam::111122223333:user/ci is not authorized to perform: ecr-public:GetAuthorizationToken")
		return true
	})
	var logs logbuf.Buffer
	d := newDaemon(t, w.Env, &logs)
	h := httpapi.Handler(d.r, nil, d.reg)
	if err := d.r.RunOnce(t.Context()); err == nil {
		t.Error("a run with ECR Public refusing succeeded")
	}
	secrets := func() []string {
		var out []string
		for _, c := range w.Rancher.Credentials(apptest.Project) {
			out = append(out, c.SecretValue)
		}
		return out
	}
	if got := secrets(); len(got) != 1 || got[0] != w.ECR.Password(apptest.Account) {
		t.Errorf("Rancher holds %d credentials (the ECR host's refreshed: %v), want the ECR host's only", len(got), slices.Contains(got, w.ECR.Password(apptest.Account)))
	}
	code, body := get(t, h, "/readyz")
	if code != 503 || !strings.Contains(body, "ECR Public public.ecr.aws in us-east-1") || !strings.Contains(body, "sts:GetServiceBearerToken") ||
		!strings.Contains(body, `"host": "`+w.ECR.Host(apptest.Account)+`"`) {
		t.Errorf("/readyz with ECR Public refusing = %d %s", code, body)
	}
	_, metrics := get(t, h, "/metrics")
	if !strings.Contains(metrics, `rancher_ecr_credentials_ecr_errors_total{code="AccessDeniedException",region="us-east-1"} 1`) {
		t.Errorf("/metrics does not count ECR Public's refusal:\n%s", metrics)
	}

	w.ECR.SetIntercept(nil)
	if err := d.r.RunOnce(t.Context()); err != nil {
		t.Fatalf("a run with ECR Public answering: %v\n%s", err, logs.String())
	}
	var hosts []string
	for _, r := range w.Rancher.Registries(apptest.Project) {
		hosts = append(hosts, r.ServerAddress)
	}
	if !slices.Contains(hosts, "public.ecr.aws") || !slices.Contains(secrets(), w.ECR.PublicPassword()) {
		t.Errorf("registries %v: public.ecr.aws with ECR Public's password is not among them", hosts)
	}
	code, ready := get(t, h, "/readyz")
	if code != 200 {
		t.Errorf("/readyz once ECR Public answers = %d %s", code, ready)
	}
	_, metrics2 := get(t, h, "/metrics")
	apptest.NoSecrets(t, body+ready+metrics+metrics2+logs.String(), w.ECR.Password(apptest.Account), w.ECR.PublicPassword())
}
