package kubesecret_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
)

func TestHosts_Secrets(t *testing.T) {
	t.Parallel()
	secret := func(data map[string][]byte) *corev1.Secret { return &corev1.Secret{Data: data} }
	cfg := func(s string) *corev1.Secret { return secret(map[string][]byte{corev1.DockerConfigJsonKey: []byte(s)}) }
	for _, tc := range []struct {
		name string
		s    *corev1.Secret
		want string // hosts joined by ",", or "error"
	}{
		{"Hosts", cfg(`{"auths":{"https://` + strings.ToUpper(host) + `/":{},"index.docker.io":{},"` + host + `":{}}}`), host + ",index.docker.io"},
		{"NoHostKept", cfg(`{"auths":{"not a host":{}}}`), "not a host"},
		{"EmptyAuths", cfg(`{"auths":{}}`), ""},
		{"NoAuths", cfg(`{}`), ""},
		{"NotJSON", cfg(`{"auths":`), "error"},
		{"NoKey", secret(nil), ""}, // nothing held: safe to write into
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hs, err := kubesecret.Hosts(tc.s)
			got := strings.Join(hs, ",")
			if err != nil {
				got = "error"
			}
			if got != tc.want {
				t.Errorf("Hosts = %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}
