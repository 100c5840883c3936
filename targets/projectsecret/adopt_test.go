package projectsecret_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/projectsecret"
)

// v3Marks are what POST /v3/project/<id>/dockercredentials puts on the Secret
// (docs/rancher-2.12.md): the creator label and the two annotations.
func (e *env) v3Marks() (labels, annotations map[string]string) {
	return map[string]string{projectsecret.CreatorLabel: projectsecret.CreatorNorman},
		map[string]string{projectsecret.CreatorIDAnnotation: "u-abcde", projectsecret.ProjectIDAnnotation: e.id}
}

// putAnnotated is put with annotations too.
func (e *env) putAnnotated(name string, labels, annotations map[string]string, hosts ...string) *corev1.Secret {
	e.T.Helper()
	s := e.put(name, labels, hosts...)
	s.Annotations = annotations
	s, err := e.Admin.CoreV1().Secrets(e.backing).Update(context.Background(), s, metav1.UpdateOptions{})
	if err != nil {
		e.T.Fatal(err)
	}
	return s
}

// relabel does what Rancher 2.12 does to a /v3 Secret at every start and at
// any namespace event of the project: the creator label goes, the
// project-scoped label comes; the annotations stay.
func (e *env) relabel(name string) {
	e.T.Helper()
	s := e.secret(name)
	delete(s.Labels, projectsecret.CreatorLabel)
	s.Labels[projectsecret.ProjectScopedLabel] = e.project
	if _, err := e.Admin.CoreV1().Secrets(e.backing).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		e.T.Fatal(err)
	}
}

// noWarning fails the test when the logs hold a warning or an error: a clean
// pass logs neither.
func (e *env) noWarning() {
	e.T.Helper()
	if out := e.Logs.String(); strings.Contains(out, "level=warning") || strings.Contains(out, "level=error") {
		e.T.Errorf("a clean pass logged a warning:\n%s", out)
	}
}

// A Secret made through /v3 (a dockerCredential from before the upgrade),
// holding only the managed host, is adopted in place (same uid: the
// imagePullSecrets naming it and Rancher's copies keep working) before and
// after Rancher's relabel, and whether the label or only an annotation says
// so. It gains the ownership and project-scoped labels and keeps the rest.
func TestAdoptsV3Secret(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		marks func(e *env) (labels, annotations map[string]string)
	}{
		{"BeforeRelabel", (*env).v3Marks},
		{"AfterRelabel", func(e *env) (map[string]string, map[string]string) {
			_, a := e.v3Marks()
			return map[string]string{projectsecret.ProjectScopedLabel: e.project}, a
		}},
		{"CreatorIDOnly", func(e *env) (map[string]string, map[string]string) {
			return nil, map[string]string{projectsecret.CreatorIDAnnotation: "u-abcde"}
		}},
		{"ProjectIDOnly", func(e *env) (map[string]string, map[string]string) {
			return nil, map[string]string{projectsecret.ProjectIDAnnotation: e.id}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "v2.12.3", true)
			labels, annotations := tc.marks(e)
			old := e.putAnnotated(secretName, labels, annotations, host)
			target := e.chosen("auto")
			if err := e.run(target); err != nil {
				t.Fatal(err)
			}
			s := e.checkWritten()
			if s.UID != old.UID {
				t.Errorf("uid %s → %s: not updated in place", old.UID, s.UID)
			}
			for k, v := range labels {
				if s.Labels[k] != v {
					t.Errorf("label %s=%s dropped: %v", k, v, s.Labels)
				}
			}
			for k, v := range annotations {
				if s.Annotations[k] != v {
					t.Errorf("annotation %s=%s dropped: %v", k, v, s.Annotations)
				}
			}
			if _, adopted := e.last.Plan.Writes[0].Fields["adopted"]; !adopted {
				t.Errorf("the write does not say it adopts: %v", e.last.Plan.Writes[0].Fields)
			}
			// Rancher relabels (again): still ours, updated in place.
			e.relabel(secretName)
			if err := e.run(target); err != nil {
				t.Fatal(err)
			}
			if s2 := e.checkWritten(); s2.UID != old.UID || s2.ResourceVersion == s.ResourceVersion {
				t.Errorf("after the relabel: uid %s, resourceVersion %s → %s", s2.UID, s.ResourceVersion, s2.ResourceVersion)
			}
			e.noWarning()
		})
	}
}

// A first pass into a project with no Secret creates ours and logs no
// warning (the empty placeholder once made one: "unreadable .dockerconfigjson");
// nor does the next pass.
func TestCleanRunLogsNoWarning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "v2.12.3", true)
	target := e.chosen("auto")
	for range 2 {
		if err := e.run(target); err != nil {
			t.Fatal(err)
		}
		e.checkWritten()
	}
	e.noWarning()
	if !strings.Contains(e.Logs.String(), "level=info") {
		t.Error("no log line at all: the check above proves nothing")
	}
}

// Secrets that are not this process's are never changed (resourceVersion
// unchanged): made by hand without a /v3 mark, copied by Rancher (whatever
// labels the copy carries), or marked for another project. Bearing our name
// they fail the host, naming why; under another name they are noted and ours
// is written beside them.
func TestForeignSecretsUntouched(t *testing.T) {
	t.Parallel()
	copyOf := func(e *env) (map[string]string, map[string]string) {
		l, a := e.v3Marks()
		l[kubesecret.ManagedByLabel] = kubesecret.ManagedBy
		a[kubesecret.RancherCopyAnnotation] = "true"
		return l, a
	}
	for _, tc := range []struct {
		name    string
		marks   func(e *env) (labels, annotations map[string]string)
		wantErr string
	}{
		{"ByHand", func(*env) (map[string]string, map[string]string) { return nil, nil }, "made neither by this process"},
		{"RancherCopy", copyOf, "is a copy Rancher made"},
		{"OtherProjectLabel", func(e *env) (map[string]string, map[string]string) {
			return map[string]string{projectsecret.ProjectScopedLabel: "p-other"}, map[string]string{projectsecret.CreatorIDAnnotation: "u-abcde"}
		}, "another project"},
		{"OtherProjectAnnotation", func(e *env) (map[string]string, map[string]string) {
			return nil, map[string]string{projectsecret.ProjectIDAnnotation: e.cluster + ":p-other"}
		}, "another project"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, "v2.12.3", true)
			labels, annotations := tc.marks(e)
			named := e.putAnnotated(secretName, labels, annotations, host)
			err := e.run(e.chosen("auto"))
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), secretName) {
				t.Fatalf("err = %v, want %q naming %s", err, tc.wantErr, secretName)
			}
			if s := e.secret(secretName); s.ResourceVersion != named.ResourceVersion {
				t.Errorf("resourceVersion %s → %s: the secret was changed", named.ResourceVersion, s.ResourceVersion)
			}

			f := newEnv(t, "v2.12.3", true)
			labels, annotations = tc.marks(f)
			other := f.putAnnotated("team-pull", labels, annotations, host)
			if err := f.run(f.chosen("auto")); err != nil {
				t.Fatal(err)
			}
			f.checkWritten()
			if s := f.secret("team-pull"); s.ResourceVersion != other.ResourceVersion {
				t.Errorf("resourceVersion %s → %s: the other secret was changed", other.ResourceVersion, s.ResourceVersion)
			}
			// A credential of our host that is not ours to refresh goes stale:
			// that is worth a warning, naming it.
			if !strings.Contains(f.Logs.String(), "level=warning") || !strings.Contains(f.Logs.String(), "credential=team-pull") {
				t.Errorf("the untouched secret is not warned about:\n%s", f.Logs)
			}
		})
	}
}
