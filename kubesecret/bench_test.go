package kubesecret_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testheap"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
)

// BenchmarkWriter_Memory measures, on the real apiserver and with real-size
// ECR passwords (about 2,400 characters), what the Writer keeps per Secret it
// wrote (record-B/secret), against what keeping each Secret as the server
// returned it would (full-copy-B/secret: what the writer kept before).
//
//	KUBEBUILDER_ASSETS=$(scripts/kube-testenv.sh | tail -1) go test -run '^$' -bench Writer_Memory -benchtime 1x ./kubesecret
func BenchmarkWriter_Memory(b *testing.B) {
	srv := server.Start(b)
	c := kubetest.Clientset(b, srv.AdminConfig())
	ctx := b.Context()
	const count = 300
	raw := make([]byte, 1800)
	_, _ = rand.Read(raw)
	pw := base64.StdEncoding.EncodeToString(raw) // 2,400 characters
	for n := 0; b.Loop(); n++ {
		ns := fmt.Sprintf("bench-mem-%d", n)
		if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		w := kubesecret.NewWriter(func(ns string) kubesecret.SecretsAPI { return c.CoreV1().Secrets(ns) })
		for i := range count {
			if _, err := w.Apply(ctx, ns, fmt.Sprintf("s-%d", i), managed, auths(pw), nil); err != nil {
				b.Fatal(err)
			}
		}
		with := testheap.Live()
		runtime.KeepAlive(w)
		w = nil
		without := testheap.Live()
		b.ReportMetric(float64(int64(with)-int64(without))/count, "record-B/secret")

		copies := map[string]*corev1.Secret{}
		for i := range count {
			s, err := c.CoreV1().Secrets(ns).Get(ctx, fmt.Sprintf("s-%d", i), metav1.GetOptions{})
			if err != nil {
				b.Fatal(err)
			}
			s.ManagedFields = nil
			copies[s.Name] = s
		}
		with = testheap.Live()
		runtime.KeepAlive(copies)
		copies = nil
		without = testheap.Live()
		b.ReportMetric(float64(int64(with)-int64(without))/count, "full-copy-B/secret")
	}
}
