package rancher

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
)

// checkAdopted checks that the Secret (uid) was updated in place by the Kubernetes way: same uid,
// the daemon's label and the project-scoped label, the password last handed out.
func (e *env) checkAdopted(p rancherreal.Project, name string, uid string) *corev1.Secret {
	e.t.Helper()
	s := e.mustGet(p.BackingNamespace, name)
	if string(s.UID) != uid {
		e.t.Errorf("%s/%s was replaced (uid %s → %s), want it adopted in place", s.Namespace, name, uid, s.UID)
	}
	if s.Labels[managedByLabel] != managedBy || s.Labels[projectScopedLabel] != p.Name {
		e.t.Errorf("%s/%s labels %v, want %s=%s and %s=%s", s.Namespace, name, s.Labels, managedByLabel, managedBy, projectScopedLabel, p.Name)
	}
	if passwordOf(s, host) != e.password() {
		e.t.Errorf("%s/%s does not hold the password handed out last", s.Namespace, name)
	}
	return s
}

// Upgrade to 2.12, before Rancher has relabelled anything: the dockerCredential the daemon wrote
// through /v3 (still labelled cattle.io/creator=norman) is adopted in place, and copied from then on.
func TestRancher_AdoptBeforeRelabel(t *testing.T) {
	t.Parallel()
	e := setup212(t)
	p := e.srv.NewProject(t, "adopt-before-"+rancherreal.Suffix()) // no namespace: no event relabels it
	e.mustRun(append(e.projectEnv(p, e.srv.AdminToken), "RANCHER_SECRET_API=v3")...)
	v3 := e.mustGet(p.BackingNamespace, ourName)
	if v3.Labels[creatorLabel] != "norman" {
		t.Fatalf("the /v3-made Secret is labelled %v: relabelled already, this test needs it before", v3.Labels)
	}

	out := e.mustRun(e.projectEnv(p, e.srv.AdminToken)...)
	noWarnings(t, out)
	s := e.checkAdopted(p, ourName, string(v3.UID))
	e.waitCopy(s, e.srv.NewNamespace(t, p, "adopt-before"))
}

// TestRancher_AdoptAfterRelabel is issue 17's first defect. Rancher 2.12 removes
// cattle.io/creator=norman from /v3-made Secrets at the first namespace event of the project (and at
// every start), leaving only the annotations field.cattle.io/creatorId and field.cattle.io/projectId.
// Such a Secret holding only managed hosts must still be adopted in place (same uid).
func TestRancher_AdoptAfterRelabel(t *testing.T) {
	t.Parallel()
	t.Run("OwnFromBeforeTheUpgrade", func(t *testing.T) {
		t.Parallel()
		e := setup212(t)
		p := e.srv.NewProject(t, "adopt-after-"+rancherreal.Suffix())
		nsA := e.srv.NewNamespace(t, p, "adopt-after-a")
		e.mustRun(append(e.projectEnv(p, e.srv.AdminToken), "RANCHER_SECRET_API=v3")...)
		e.srv.NewNamespace(t, p, "adopt-after-b") // the event that relabels
		relabelled := e.waitRelabelled(p, ourName)

		out, code := e.runOnce(e.projectEnv(p, e.srv.AdminToken)...)
		if code != 0 {
			t.Errorf("--once after Rancher's relabel exited %d, want 0:\n%s", code, strings.Join(outLines(out, "level=error"), "\n"))
		}
		noWarnings(t, out)
		s := e.checkAdopted(p, ourName, string(relabelled.UID))
		if passwordOf(s, host) == e.password() {
			e.waitCopy(s, nsA)
		}
	})
	t.Run("MadeByHandThroughV3", func(t *testing.T) {
		t.Parallel()
		e := setup212(t)
		p := e.srv.NewProject(t, "adopt-hand-"+rancherreal.Suffix())
		nsA := e.srv.NewNamespace(t, p, "adopt-hand-a")
		e.createV3Credential(p, e.srv.AdminToken, "ecr-by-hand", map[string][2]string{host: {"AWS", "stale-by-hand-password"}})
		e.srv.NewNamespace(t, p, "adopt-hand-b")
		relabelled := e.waitRelabelled(p, "ecr-by-hand")

		out, code := e.runOnce(e.projectEnv(p, e.srv.AdminToken)...)
		if code != 0 {
			t.Errorf("--once exited %d, want 0:\n%s", code, out)
		}
		noWarnings(t, out)
		e.checkAdopted(p, "ecr-by-hand", string(relabelled.UID))
		if s := e.get(p.BackingNamespace, ourName); s != nil {
			t.Errorf("a second Secret %s/%s holding %s was made beside the /v3-made ecr-by-hand, which stays stale and is copied into %s",
				p.BackingNamespace, ourName, host, nsA)
		}
	})
}

// Secrets that are not the daemon's to write are never rewritten: a /v3 dockerCredential that also
// holds a host the daemon does not manage (its password cannot be read back), before and after
// Rancher's relabel, and a Secret of the daemon's name made by hand (as the Dashboard makes one).
func TestRancher_ForeignSecretsNeverRewritten(t *testing.T) {
	t.Parallel()
	t.Run("V3CredentialWithOtherHosts", func(t *testing.T) {
		t.Parallel()
		e := setup212(t)
		p := e.srv.NewProject(t, "foreign-v3-"+rancherreal.Suffix())
		e.createV3Credential(p, e.srv.AdminToken, "mixed", map[string][2]string{
			host: {"AWS", "stale-mixed-password"}, "index.docker.io": {"someone", "hub-password-of-someone"}})
		before := e.mustGet(p.BackingNamespace, "mixed")

		out := e.mustRun(e.projectEnv(p, e.srv.AdminToken)...)
		if len(outLines(out, "level=warning", "mixed")) == 0 {
			t.Errorf("the run did not say that Secret mixed holds a host it does not manage:\n%s", out)
		}
		e.checkSource(p) // its own Secret instead
		e.srv.NewNamespace(t, p, "foreign-v3")
		e.waitRelabelled(p, "mixed")
		e.mustRun(e.projectEnv(p, e.srv.AdminToken)...)
		after := e.mustGet(p.BackingNamespace, "mixed")
		if passwordOf(after, host) != "stale-mixed-password" || passwordOf(after, "index.docker.io") != "hub-password-of-someone" {
			t.Errorf("Secret mixed (uid %s, resourceVersion %s → %s) was rewritten", before.UID, before.ResourceVersion, after.ResourceVersion)
		}
	})
	t.Run("MadeByHand", func(t *testing.T) {
		t.Parallel()
		e := setup212(t)
		p := e.srv.NewProject(t, "foreign-hand-"+rancherreal.Suffix())
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		e.secret("a hand-made Secret's password", "hand-made-password")
		made, err := e.srv.KubeClient(t).CoreV1().Secrets(p.BackingNamespace).Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: ourName, Labels: map[string]string{projectScopedLabel: p.Name}},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data:       map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"` + host + `":{"username":"AWS","password":"hand-made-password"}}}`)},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out, code := e.runOnce(e.projectEnv(p, e.srv.AdminToken)...)
		if code != 1 {
			t.Errorf("--once exited %d, want 1 (the project cannot be written)", code)
		}
		if len(outLines(out, "level=error", p.BackingNamespace+"/"+ourName)) == 0 {
			t.Errorf("no error line names %s/%s:\n%s", p.BackingNamespace, ourName, out)
		}
		if after := e.mustGet(p.BackingNamespace, ourName); after.ResourceVersion != made.ResourceVersion {
			t.Errorf("the hand-made Secret was rewritten (resourceVersion %s → %s)", made.ResourceVersion, after.ResourceVersion)
		}
	})
}
