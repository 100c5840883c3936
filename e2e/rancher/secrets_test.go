package rancher

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/rancherreal"
)

const (
	projectScopedLabel = "management.cattle.io/project-scoped-secret"
	copyAnnotation     = "management.cattle.io/project-scoped-secret-copy"
	managedByLabel     = "app.kubernetes.io/managed-by"
	managedBy          = "rancher-ecr-credentials"
	creatorLabel       = "cattle.io/creator"
	creatorIDAnno      = "field.cattle.io/creatorId"
	projectIDAnno      = "field.cattle.io/projectId"

	// copyTimeout bounds how long Rancher's controller may take to copy a change (about 2 s measured).
	copyTimeout = 60 * time.Second
)

// get reads namespace/name through the admin client; nil when it does not exist.
func (e *env) get(namespace, name string) *corev1.Secret {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.t.Context(), 30*time.Second)
	defer cancel()
	s, err := e.srv.KubeClient(e.t).CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		e.t.Fatalf("get secret %s/%s: %v", namespace, name, err)
	}
	return s
}

// mustGet reads namespace/name and fails the test when it is not there.
func (e *env) mustGet(namespace, name string) *corev1.Secret {
	e.t.Helper()
	s := e.get(namespace, name)
	if s == nil {
		e.t.Fatalf("secret %s/%s does not exist", namespace, name)
	}
	return s
}

// waitFor polls cond every 200 ms until it holds, failing the test after d with cond's last word.
func (e *env) waitFor(d time.Duration, what string, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-deadline.C:
			e.t.Fatalf("timed out after %s waiting for %s; last: %s", d, what, state)
		case <-e.t.Context().Done():
			e.t.Fatalf("test ended waiting for %s", what)
		case <-tick.C:
		}
	}
}

// waitCopy waits until namespace holds Rancher's copy of source with source's data.
func (e *env) waitCopy(source *corev1.Secret, namespace string) *corev1.Secret {
	e.t.Helper()
	var c *corev1.Secret
	e.waitFor(copyTimeout, fmt.Sprintf("Rancher's copy of %s/%s in %s", source.Namespace, source.Name, namespace), func() (bool, string) {
		c = e.get(namespace, source.Name)
		switch {
		case c == nil:
			return false, "no copy"
		case c.Annotations[copyAnnotation] != "true":
			return false, "no copy annotation"
		case string(c.Data[corev1.DockerConfigJsonKey]) != string(source.Data[corev1.DockerConfigJsonKey]):
			return false, "data differs from the source"
		}
		return true, ""
	})
	return c
}

type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// auths returns the entries of a dockerconfigjson Secret by host.
func auths(s *corev1.Secret) map[string]dockerAuth {
	var cfg struct {
		Auths map[string]dockerAuth `json:"auths"`
	}
	_ = json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg)
	return cfg.Auths
}

// passwordOf returns the password s holds for h ("" when none).
func passwordOf(s *corev1.Secret, h string) string { return auths(s)[h].Password }

// createV3Credential creates a project-scoped dockerCredential through /v3, as the Ember UI and
// the terraform provider do, with token; registries maps host → [username, password].
func (e *env) createV3Credential(p rancherreal.Project, token, name string, registries map[string][2]string) {
	e.t.Helper()
	regs := map[string]any{}
	for h, up := range registries {
		regs[h] = map[string]string{"username": up[0], "password": up[1]}
		e.secret("the password of "+h+" in /v3 credential "+name, up[1])
	}
	ctx, cancel := context.WithTimeout(e.t.Context(), 30*time.Second)
	defer cancel()
	if err := e.srv.V3(ctx, token, http.MethodPost, "/v3/project/"+p.ID+"/dockercredentials",
		map[string]any{"type": "dockerCredential", "name": name, "registries": regs}, nil); err != nil {
		e.t.Fatalf("create /v3 dockerCredential %s in %s: %v", name, p.ID, err)
	}
}

// relabelled waits until Rancher has migrated a /v3-made Secret of p: cattle.io/creator gone,
// the project-scoped label set (it does so at a namespace event of the project).
func (e *env) waitRelabelled(p rancherreal.Project, name string) *corev1.Secret {
	e.t.Helper()
	var s *corev1.Secret
	e.waitFor(copyTimeout, "Rancher's relabel of "+p.BackingNamespace+"/"+name, func() (bool, string) {
		s = e.mustGet(p.BackingNamespace, name)
		return s.Labels[creatorLabel] == "" && s.Labels[projectScopedLabel] == p.Name, fmt.Sprintf("labels %v", s.Labels)
	})
	return s
}

// outLines returns the lines of out that contain every one of words.
func outLines(out string, words ...string) []string {
	var lines []string
	for line := range strings.Lines(out) {
		ok := true
		for _, w := range words {
			ok = ok && strings.Contains(line, w)
		}
		if ok {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	return lines
}
