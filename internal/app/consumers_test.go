package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/apptest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/consumertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testbin"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/argocd"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/labelled"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/rancherapps"
)

// Bad consumer settings are refused before any network call, each line
// naming the variable and the fix.
func TestCheck_Consumers(t *testing.T) {
	t.Parallel()
	region := map[string]string{"AWS_REGION": "us-east-1"}
	for name, tt := range map[string]struct {
		env  map[string]string
		want []string
	}{
		"UnknownKind":     {with(region, "KUBE_CONSUMERS", "labelled,flux"), []string{`KUBE_CONSUMERS: "flux" is not a consumer kind: use labelled, argocd, rancher-apps (comma list) or all`}},
		"AllWithOthers":   {with(region, "KUBE_CONSUMERS", "all,argocd"), []string{`KUBE_CONSUMERS: "all" must stand alone`}},
		"NamespacesAlone": {with(region, "KUBE_CONSUMER_NAMESPACES", "argocd"), []string{"KUBE_CONSUMER_NAMESPACES: set, but KUBE_CONSUMERS is not: set KUBE_CONSUMERS to labelled, argocd, rancher-apps (comma list) or all"}},
		"BadGlob":         {with(with(region, "KUBE_CONSUMERS", "argocd"), "KUBE_CONSUMER_NAMESPACES", "team-[a"), []string{`KUBE_CONSUMER_NAMESPACES: "team-[a" is not a name or glob: syntax error in pattern: use namespace names, globs such as team-*, or all`}},
		"BadName":         {with(with(region, "KUBE_CONSUMERS", "argocd"), "KUBE_CONSUMER_NAMESPACES", "Argo_CD"), []string{`KUBE_CONSUMER_NAMESPACES: "Argo_CD" is not a namespace name`}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			wantProblems(t, nil, tt.env, tt.want...)
		})
	}
}

// The daemon with KUBE_CONSUMERS=all on a real kube-apiserver holding
// Rancher's ClusterRepo CRD: a labelled Secret, an Argo CD repository Secret
// and a ClusterRepo's clientSecret each get the fresh ECR token; /metrics
// and /readyz count each consumer kind per registry; a Secret labelled while
// it runs is written within seconds; no password in any output.
func TestRun_Consumers(t *testing.T) {
	srv := kubetest.Start(t)
	if err := srv.InstallCRDs(filepath.Join("..", "..", "targets", "rancherapps", "testdata", "clusterrepos.catalog.cattle.io.yaml")); err != nil {
		t.Fatal(err)
	}
	admin := kubetest.Clientset(t, srv.AdminConfig())
	ctx := t.Context()
	w := apptest.NewWorld(t)
	host := w.ECR.Host(apptest.Account)
	for _, ns := range []string{"builds", "argocd", "cattle-system"} {
		if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(s *corev1.Secret) {
		t.Helper()
		if _, err := admin.CoreV1().Secrets(s.Namespace).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "kaniko", Namespace: "builds", Labels: map[string]string{labelled.HostLabel: host},
		Annotations: map[string]string{labelled.FormatAnnotation: labelled.FormatDockerConfig}}, Type: corev1.SecretTypeOpaque})
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ecr-charts", Namespace: "argocd", Labels: map[string]string{argocd.TypeLabel: argocd.TypeRepository}},
		StringData: map[string]string{"url": "oci://" + host + "/charts", "type": "helm", "enableOCI": "true", "name": "ecr"}})
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ecr-helm", Namespace: "cattle-system"}, Type: corev1.SecretTypeBasicAuth,
		StringData: map[string]string{"username": "AWS", "password": "pending"}})
	consumertest.ClusterRepo(t, srv.AdminConfig(), "ecr-charts", "oci://"+host+"/charts", "cattle-system", "ecr-helm")
	t.Setenv("KUBECONFIG", kubetest.WriteKubeconfig(t, srv.AdminConfig(), "default"))
	port := testbin.FreePort(t)
	env := map[string]string{"KUBE_CONSUMERS": "all", "AWS_REGION": "us-east-1", "AWS_ECR_REGISTRY_IDS": apptest.Account,
		"LOG_LEVEL": "debug", "LISTEN_PORT": port, "LISTEN_ADDRESS": "127.0.0.1"}
	// --dry-run plans every consumer through the server's dry run and changes nothing.
	before := map[string]string{}
	for _, s := range [][2]string{{"builds", "kaniko"}, {"argocd", "ecr-charts"}, {"cattle-system", "ecr-helm"}} {
		sec, err := admin.CoreV1().Secrets(s[0]).Get(ctx, s[1], metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		before[s[0]+"/"+s[1]] = sec.ResourceVersion
	}
	_, dryLogs, err := run(ctx, with(env, "LISTEN_PORT", "0"), "--dry-run")
	if err != nil || strings.Count(dryLogs, `msg="dry run: would update secret"`) != 3 {
		t.Fatalf("--dry-run: %v\n%s", err, dryLogs)
	}
	for key, rv := range before {
		ns, name, _ := strings.Cut(key, "/")
		if sec, err := admin.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{}); err != nil || sec.ResourceVersion != rv {
			t.Errorf("--dry-run changed %s", key)
		}
	}
	apptest.NoSecrets(t, dryLogs, w.ECR.Password(apptest.Account))

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	var logs string
	go func() {
		var err error
		_, logs, err = run(rctx, env)
		done <- err
	}()
	holds := func(ns, name, key string) bool {
		s, err := admin.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
		pw := w.ECR.Password(apptest.Account)
		return err == nil && pw != "" && strings.Contains(string(s.Data[key]), pw)
	}
	testwait.For(t, testwait.Limit, "every consumer written", func() bool {
		return holds("builds", "kaniko", "config.json") && holds("argocd", "ecr-charts", "password") && holds("cattle-system", "ecr-helm", "password")
	})
	get := func(path string) string {
		resp, err := http.Get("http://127.0.0.1:" + port + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	testwait.For(t, testwait.Limit, "/readyz to count each consumer kind", func() bool {
		body := get("/readyz")
		return strings.Contains(body, `"ready": true`) && strings.Count(body, `"fresh": 1`) == 3
	})
	readyz, metrics := get("/readyz"), get("/metrics")
	for _, g := range []string{labelled.Group, argocd.Group, rancherapps.Group} {
		if !strings.Contains(readyz, `"target": "`+g+`"`) {
			t.Errorf("/readyz has no summary for %s:\n%s", g, readyz)
		}
		if want := fmt.Sprintf(`rancher_ecr_credentials_writes_total{registry=%q,result="updated",scope=%q} 1`, host, g); !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	began := time.Now()
	create(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "late", Namespace: "builds", Labels: map[string]string{labelled.HostLabel: host}}, Type: corev1.SecretTypeOpaque})
	testwait.For(t, testwait.Limit, "a Secret labelled while the daemon runs to be written", func() bool { return holds("builds", "late", "password") })
	t.Logf("a Secret labelled while the daemon ran was written %s later", time.Since(began).Round(time.Millisecond))
	cancel()
	if err := testwait.Recv(t, done); err != nil {
		t.Errorf("daemon exit: %v\n%s", err, logs)
	}
	apptest.NoSecrets(t, logs+readyz+metrics, w.ECR.Password(apptest.Account))
	for _, want := range []string{`msg="secret written" consumer=labelled`, `msg="secret written" argocd_secret_type=repository consumer=argocd`, `msg="secret written" clusterrepo=ecr-charts consumer=rancher-apps`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
}
