package kubesecret_test

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
)

func TestHosts(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		data    string
		want    []string
		wantErr bool
	}{
		{``, nil, false},
		{`{"auths":{}}`, []string{}, false},
		{`{"auths":{"https://111122223333.dkr.ecr.us-east-1.amazonaws.com/":{},"111122223333.dkr.ecr.us-east-1.amazonaws.com":{},"Quay.io":{}}}`,
			[]string{"111122223333.dkr.ecr.us-east-1.amazonaws.com", "quay.io"}, false},
		{`{"credHelpers":{"gcr.io":"gcloud"}}`, []string{}, false},
		{`{"auths":{"not a host at all":{}}}`, []string{"not a host at all"}, false},
		{`not json`, nil, true},
		{`{"auths":[]}`, nil, true},
	} {
		s := &corev1.Secret{Data: map[string][]byte{}}
		if c.data != "" {
			s.Data[corev1.DockerConfigJsonKey] = []byte(c.data)
		}
		got, err := kubesecret.Hosts(s)
		if (err != nil) != c.wantErr || !slices.Equal(got, c.want) {
			t.Errorf("Hosts(%s) = %q, %v; want %q (error: %v)", c.data, got, err, c.want, c.wantErr)
		}
	}
}
