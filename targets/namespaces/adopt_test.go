package namespaces_test

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/namespaces"
)

// Issue 18, item 10: with KUBE_ADOPT_SECRETS an unlabelled Secret of that
// name is taken over in place (same uid) when every host it holds is managed
// — the one nabsul/k8s-ecr-login-renew keeps, keyed "https://<host>" — and
// its other spelling of the host is replaced. One holding any other host, or
// one that cannot be read, is never changed; without the setting none is.
func TestTarget_AdoptSecrets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	nss := map[string]map[string]string{"adopt-nabsul": nil, "adopt-mixed": nil, "adopt-off": nil, "adopt-unmanaged": nil, "adopt-garbage": nil}
	e.namespaces(nss)
	nabsul := `{"auths":{"https://` + host + `":{"username":"AWS","password":"old","email":"awsregrenew@demo.test","auth":"QVdTOm9sZA=="}}}`
	secrets := map[string]*corev1.Secret{}
	for ns, data := range map[string]string{
		"adopt-nabsul": nabsul, "adopt-off": nabsul, "adopt-unmanaged": nabsul, "adopt-garbage": `{"auths":"not a map"}`,
		"adopt-mixed": `{"auths":{"` + host + `":{"auth":"x"},"quay.io":{"auth":"cTpx"}}}`,
	} {
		secrets[ns] = e.Create(foreignSecret(ns, data))
	}
	sel := mustSelection(t, slices.Collect(maps.Keys(nss)), "", nil)
	adopt := e.target(namespaces.Options{Selection: sel, Adopt: true})
	e.Watch(adopt, e.Refresher())
	keep := e.target(namespaces.Options{Selection: sel})
	e.Watch(keep, e.Refresher())

	apply := func(tg *namespaces.Target, ns string, managed func(string) bool) (refresher.Result, error) {
		t.Helper()
		return e.plan(tg, ns, managed).Writes[0].Apply(t.Context())
	}
	res, err := apply(adopt, "adopt-nabsul", onlyHost)
	if err != nil || res != refresher.ResultUpdated {
		t.Fatalf("adopting = %q, %v", res, err)
	}
	s, _ := e.secret("adopt-nabsul", namespaces.DefaultSecretName)
	password(t, s)
	if s.UID != secrets["adopt-nabsul"].UID {
		t.Error("adopted by replacing, not in place")
	}
	var cfg struct{ Auths map[string]json.RawMessage }
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil || !slices.Equal(slices.Collect(maps.Keys(cfg.Auths)), []string{host}) {
		t.Errorf("adopted secret holds entries %v (%v): want only %s, the https:// spelling replaced", slices.Collect(maps.Keys(cfg.Auths)), err, host)
	}

	for _, c := range []struct {
		tg      *namespaces.Target
		ns      string
		managed func(string) bool
		want    []string
	}{
		{adopt, "adopt-mixed", onlyHost, []string{"KUBE_ADOPT_SECRETS does not adopt it", "registries this daemon does not manage (quay.io)"}},
		{adopt, "adopt-unmanaged", func(string) bool { return false }, []string{"does not manage (" + host + ")"}},
		{adopt, "adopt-garbage", onlyHost, []string{"is not a Docker config"}},
		{keep, "adopt-off", onlyHost, []string{"not managed by this daemon", "set KUBE_ADOPT_SECRETS=true to adopt it"}},
	} {
		_, err := apply(c.tg, c.ns, c.managed)
		targettest.WantErr(t, err, append([]string{c.ns + "/ecr-credentials"}, c.want...)...)
		if now, _ := e.secret(c.ns, namespaces.DefaultSecretName); now.ResourceVersion != secrets[c.ns].ResourceVersion {
			t.Errorf("%s: the secret was changed", c.ns)
		}
	}
}
