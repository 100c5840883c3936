package labelled_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/docker/cli/cli/config/configfile"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/consumer"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/consumertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/labelled"
)

// The registries of consumertest.Hosts: two private, ECR Public.
var hostA, hostB, public = consumertest.Hosts[0], consumertest.Hosts[1], consumertest.Hosts[2]

// secret is a labelled Secret of typ for host, with a key, a label and an
// annotation of its owner's.
func secret(ns, name, host string, typ corev1.SecretType, data map[string][]byte, annotations map[string]string) *corev1.Secret {
	d := map[string][]byte{"owner-key": []byte("kept\n")}
	for k, v := range data {
		d[k] = v
	}
	a := map[string]string{"team": "a"}
	for k, v := range annotations {
		a[k] = v
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{labelled.HostLabel: host, "app": "builder"}, Annotations: a},
		Type: typ, Data: d}
}

// start returns the target over the admin client, considering the
// namespaces matching glob (the tests share a server).
func start(e *targettest.Env, glob string) *labelled.Target {
	t := labelled.New(e.Client(nil), labelled.Options{Namespaces: consumertest.Namespaces(e.T, glob)})
	t.Logger = e.Log
	return t
}

// dockerAuth is the Docker CLI's own reading of a Docker config's entry.
func dockerAuth(t *testing.T, raw []byte, host string) (user, pw string) {
	t.Helper()
	cfg := configfile.New("config.json")
	if err := cfg.LoadFromReader(bytes.NewReader(raw)); err != nil {
		t.Fatalf("the Docker CLI cannot load it: %v", err)
	}
	a, err := cfg.GetAuthConfig(host)
	if err != nil {
		t.Fatal(err)
	}
	return a.Username, a.Password
}

// Each type gets its format, read back as its consumer reads it; nothing
// else in any Secret changes; each is a scope of its own, counted per
// (registry, consumer) in readiness.
func TestLabelled_Formats(t *testing.T) {
	t.Parallel()
	e := consumertest.New(t, &server, "lab-formats")
	other := []byte(`{"auths": {"registry.example.com": {"auth": "dXNlcjpwdw=="}}}`)
	pull := e.Create(secret("lab-formats", "pull", hostA, corev1.SecretTypeDockerConfigJson, map[string][]byte{corev1.DockerConfigJsonKey: other}, nil))
	basic := e.Create(secret("lab-formats", "helm", hostB, corev1.SecretTypeBasicAuth, map[string][]byte{"username": []byte("x"), "password": []byte("x")}, nil))
	kaniko := e.Create(secret("lab-formats", "kaniko", public, corev1.SecretTypeOpaque, nil, map[string]string{labelled.FormatAnnotation: labelled.FormatDockerConfig}))
	fleet := e.Create(secret("lab-formats", "fleet", hostA, corev1.SecretTypeOpaque, nil, nil))
	tg := start(e, "lab-formats*")
	r := e.Started(tg)

	s := e.WaitWritten("lab-formats", "pull", corev1.DockerConfigJsonKey, func() string { return e.Src.Password(hostA) })
	if u, p := dockerAuth(t, s.Data[corev1.DockerConfigJsonKey], hostA); u != "AWS" || p != e.Src.Password(hostA) {
		t.Errorf("pull: docker reads %s/%d chars", u, len(p))
	}
	if u, p := dockerAuth(t, s.Data[corev1.DockerConfigJsonKey], "registry.example.com"); u != "user" || p != "pw" {
		t.Errorf("pull: the other registry's entry now reads %s/%s", u, p)
	}
	if !bytes.Contains(s.Data[corev1.DockerConfigJsonKey], []byte(`"registry.example.com": {"auth": "dXNlcjpwdw=="}`)) {
		t.Errorf("pull: the other registry's entry is not byte for byte what it was: %s", s.Data[corev1.DockerConfigJsonKey])
	}
	consumertest.SameButFields(t, pull, s, corev1.DockerConfigJsonKey)

	s = e.WaitWritten("lab-formats", "helm", "password", func() string { return e.Src.Password(hostB) })
	if string(s.Data["username"]) != "AWS" || string(s.Data["password"]) != e.Src.Password(hostB) {
		t.Errorf("helm: username %q", s.Data["username"])
	}
	consumertest.SameButFields(t, basic, s, "username", "password")

	s = e.WaitWritten("lab-formats", "kaniko", labelled.ConfigJSONKey, func() string { return e.Src.Password(public) })
	if u, p := dockerAuth(t, s.Data[labelled.ConfigJSONKey], public); u != "AWS" || p != e.Src.Password(public) {
		t.Errorf("kaniko: docker reads %s", u)
	}
	consumertest.SameButFields(t, kaniko, s, labelled.ConfigJSONKey)

	s = e.WaitWritten("lab-formats", "fleet", "password", func() string { return e.Src.Password(hostA) })
	if string(s.Data["username"]) != "AWS" {
		t.Errorf("fleet: username %q", s.Data["username"])
	}
	consumertest.SameButFields(t, fleet, s, "username", "password")

	for _, n := range []string{"pull", "helm", "kaniko", "fleet"} {
		if !targettest.HasScope(r, labelled.ScopeName("lab-formats", n)) {
			t.Errorf("no scope %s in %v", labelled.ScopeName("lab-formats", n), r.Scopes())
		}
	}
	testwait.For(t, testwait.Limit, "readiness", func() bool { return r.Readiness(time.Now()).Ready })
	fresh := map[string]int{}
	for _, g := range r.Readiness(time.Now()).Summary {
		if g.Group == labelled.Group {
			fresh[g.Registry] += g.Fresh
		}
	}
	if fresh[hostA] != 2 || fresh[hostB] != 1 || fresh[public] != 1 {
		t.Errorf("readiness counts per (registry, labelled): %v", fresh)
	}
}

// A Secret labelled after the daemon started is written within seconds (the
// watch, not the schedule); one whose password someone replaced is written
// again; one relabelled to another registry gets that registry's entry;
// one deleted stops being a scope.
func TestLabelled_WatchedWithinSeconds(t *testing.T) {
	t.Parallel()
	e := consumertest.New(t, &server, "lab-watch")
	tg := start(e, "lab-watch*")
	r := e.Started(tg)
	testwait.For(t, testwait.Limit, "the first run", func() bool { return e.Src.Password(hostA) != "" })

	began := time.Now()
	e.Create(secret("lab-watch", "late", hostA, corev1.SecretTypeOpaque, nil, nil))
	e.WaitWritten("lab-watch", "late", "password", func() string { return e.Src.Password(hostA) })
	t.Logf("a Secret labelled after start was written %s later", time.Since(began).Round(time.Millisecond))

	s := e.Secret("lab-watch", "late")
	s.Data["password"] = []byte("someone-else")
	if _, err := e.Admin.CoreV1().Secrets("lab-watch").Update(t.Context(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.WaitWritten("lab-watch", "late", "password", func() string { return e.Src.Password(hostA) })

	s = e.Secret("lab-watch", "late")
	s.Labels[labelled.HostLabel] = hostB
	if _, err := e.Admin.CoreV1().Secrets("lab-watch").Update(t.Context(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.WaitWritten("lab-watch", "late", "password", func() string { return e.Src.Password(hostB) })

	if err := e.Admin.CoreV1().Secrets("lab-watch").Delete(t.Context(), "late", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, testwait.Limit, "the scope to go", func() bool { return !targettest.HasScope(r, labelled.ScopeName("lab-watch", "late")) })
}

// A host this daemon does not manage, a type that holds no credential and
// an unknown format are refused: the scope fails, readiness says why naming
// the Secret and the fix, and the Secret is left as it is.
func TestLabelled_Refusals(t *testing.T) {
	t.Parallel()
	e := consumertest.New(t, &server, "lab-refuse")
	cases := map[string]struct {
		s    *corev1.Secret
		want string
	}{
		"foreign": {secret("lab-refuse", "foreign", consumertest.Unmanaged, corev1.SecretTypeOpaque, nil, nil),
			"label rancher-ecr-credentials/host=" + consumertest.Unmanaged + " names a registry this daemon does not manage (it manages " + hostA},
		"tls": {secret("lab-refuse", "tls", hostA, corev1.SecretTypeTLS, map[string][]byte{"tls.crt": nil, "tls.key": nil}, nil),
			"has type kubernetes.io/tls, which holds no registry credential"},
		"format": {secret("lab-refuse", "format", hostA, corev1.SecretTypeOpaque, nil, map[string]string{labelled.FormatAnnotation: "podman"}),
			`annotation rancher-ecr-credentials/format="podman" is not a format`},
	}
	before := map[string]*corev1.Secret{}
	for name, c := range cases {
		before[name] = e.Create(c.s)
	}
	tg := start(e, "lab-refuse*")
	r := e.Started(tg)
	for name, c := range cases {
		testwait.For(t, testwait.Limit, "the refusal of "+name, func() bool {
			for _, p := range r.Status() {
				if p.Scope == labelled.ScopeName("lab-refuse", name) && strings.Contains(p.LastError, c.want) {
					return true
				}
			}
			return false
		})
		if after := e.Secret("lab-refuse", name); after.ResourceVersion != before[name].ResourceVersion {
			t.Errorf("%s: the refused Secret was written", name)
		}
	}
	if rd := r.Readiness(time.Now()); rd.Ready || !strings.Contains(rd.Reason, "lab-refuse") {
		t.Errorf("readiness %v: %s", rd.Ready, rd.Reason)
	}
}

// A Secret Rancher copied is never a scope and never written, whatever its
// labels; it is reported once.
func TestLabelled_RancherCopyNeverWritten(t *testing.T) {
	t.Parallel()
	e := consumertest.New(t, &server, "lab-copy")
	cp := e.Create(secret("lab-copy", "copy", hostA, corev1.SecretTypeOpaque, nil, map[string]string{kubesecret.RancherCopyAnnotation: "true"}))
	e.Create(secret("lab-copy", "source", hostA, corev1.SecretTypeOpaque, nil, nil))
	tg := start(e, "lab-copy*")
	r := e.Started(tg)
	e.WaitWritten("lab-copy", "source", "password", func() string { return e.Src.Password(hostA) })
	if after := e.Secret("lab-copy", "copy"); after.ResourceVersion != cp.ResourceVersion || targettest.HasScope(r, labelled.ScopeName("lab-copy", "copy")) {
		t.Error("Rancher's copy was written or is a scope")
	}
	if n := strings.Count(e.Logs.String(), "it is a copy Rancher made"); n != 1 {
		t.Errorf("the copy was reported %d times, want once", n)
	}
}

// KUBE_CONSUMER_NAMESPACES by name watches only those namespaces, so a Role
// in each is all the RBAC it needs; Secrets elsewhere are not considered.
func TestLabelled_NamespacesByName(t *testing.T) {
	t.Parallel()
	e := consumertest.New(t, &server, "lab-ns-in", "lab-ns-out")
	e.Create(secret("lab-ns-in", "in", hostA, corev1.SecretTypeOpaque, nil, nil))
	out := e.Create(secret("lab-ns-out", "out", hostA, corev1.SecretTypeOpaque, nil, nil))
	e.Grant("lab-ns-in", "lab-ns-daemon", targettest.SecretRule(consumer.SecretVerbs...))
	tg := labelled.New(e.Client(e.Srv.UserConfig("lab-ns-daemon")), labelled.Options{Namespaces: consumertest.Namespaces(t, "lab-ns-in")})
	tg.Logger = e.Log
	r := e.Started(tg)
	e.WaitWritten("lab-ns-in", "in", "password", func() string { return e.Src.Password(hostA) })
	if targettest.HasScope(r, labelled.ScopeName("lab-ns-out", "out")) || e.Secret("lab-ns-out", "out").ResourceVersion != out.ResourceVersion {
		t.Error("a Secret outside KUBE_CONSUMER_NAMESPACES was considered")
	}
}
