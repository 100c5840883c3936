package projectsecret

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/multihost"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

const (
	// ProjectScopedLabel marks a Secret of a project's backing namespace that
	// Rancher 2.12+ copies into every namespace of the project; its value is the
	// project id (p-xxxxx).
	ProjectScopedLabel = "management.cattle.io/project-scoped-secret"
	// CreatorLabel = CreatorNorman marks a Secret made through /v3, e.g. a
	// dockerCredential this process wrote before the upgrade to 2.12. Rancher
	// 2.12 removes it at the first namespace event of the project and at every
	// start (when it adds ProjectScopedLabel).
	CreatorLabel  = "cattle.io/creator"
	CreatorNorman = "norman"
	// CreatorIDAnnotation and ProjectIDAnnotation (<cluster>:<project>) are set
	// on every Secret made through /v3 and stay after Rancher's relabel: what
	// is left of its origin (docs/rancher-2.12.md).
	CreatorIDAnnotation = "field.cattle.io/creatorId"
	ProjectIDAnnotation = "field.cattle.io/projectId"
)

// Target is one Rancher 2.x project, written through Kubernetes.
type Target struct {
	mu        sync.Mutex
	namespace string // the backing namespace, once found (it never changes)

	// Cluster is the local cluster the project's Secrets live in.
	Cluster *Cluster
	// Project is <cluster id>:<project id>.
	Project string
}

var _ refresher.Target = (*Target)(nil)

// Writing into a project: the Secret is named as on /v3
// (registryhost.CredentialName), so imagePullSecrets that name it keep working
// when Rancher is upgraded. The /v3 no-loss rule holds (multihost decides): a
// Secret is updated in place only when every host in it is one this process
// manages and it is this process's own (label app.kubernetes.io/managed-by)
// or was made through /v3 (see MadeThroughV3), which then gains the
// project-scoped label and the ownership label. A Secret holding any other
// host, made by anyone else, or copied by Rancher is never rewritten.

// secretVerbs are what the project's Secrets take.
var secretVerbs = []string{"get", "list", "create", "update"}

// Plan reads the backing namespace's dockerconfigjson Secrets and plans the
// write of every one that is this process's and holds a host of want.Tokens,
// and a new Secret for each host that none holds.
func (t *Target) Plan(ctx context.Context, want refresher.Input) (refresher.Plan, error) {
	_, project, _ := SplitProject(t.Project)
	ns, objects, byName, err := t.read(ctx, project)
	if err != nil {
		return refresher.Plan{}, err
	}
	own := owner(project, want.Managed)
	assigned, failures := multihost.Assign(want, objects, registryhost.CredentialName)
	p := refresher.Plan{Failures: failures}
	labels := map[string]string{kubesecret.ManagedByLabel: kubesecret.ManagedBy, ProjectScopedLabel: project}
	for _, a := range assigned {
		// The writer starts from the Secret as listed (a refresh is one update
		// after the list, no create ending in 409 and no second read), asks own
		// before changing it, and keeps the entries of hosts whose token is not
		// in hand as they are.
		var s *corev1.Secret
		if a.Object != nil {
			s = byName[a.Name]
		}
		id, name, auths := ns+"/"+a.Name, a.Name, kubesecret.Auths(a.Tokens)
		w := refresher.Write{
			What: "project-scoped secret", Written: "project-scoped secret written", Object: id, Tokens: a.Tokens, Detail: "project=" + project,
			Action: refresher.ResultCreated, Fields: logrus.Fields{"secret": id},
		}
		var drop func(string) bool // the hosts taken back (Input.TakeBack)
		if dropped := a.Dropped; len(dropped) > 0 {
			drop = func(h string) bool { return slices.Contains(dropped, h) }
			w.Detail += ";dropped=" + strings.Join(dropped, ",")
			w.Fields["taken_back"] = strings.Join(dropped, ",")
			if len(a.Tokens) == 0 {
				w.Written = "project-scoped secret emptied of this daemon's registries: the project's AWS identity is another, or refused"
			}
		}
		if s != nil {
			w.Action = refresher.ResultUpdated
			if s.Labels[kubesecret.ManagedByLabel] != kubesecret.ManagedBy {
				w.Fields["adopted"] = "made through /v3; now labelled " + ProjectScopedLabel
			}
		}
		// A dry run meets the same refusals through the API server's own dry run.
		w.Apply = func(ctx context.Context) (refresher.Result, error) {
			res, err := t.Cluster.Writer.ApplyFrom(ctx, ns, name, s, labels, auths, drop, own)
			return t.explainWrite(ns, res, err)
		}
		w.Check = func(ctx context.Context) (refresher.Result, error) {
			res, err := t.Cluster.Writer.CheckFrom(ctx, ns, name, s, labels, auths, drop, own)
			return t.explainWrite(ns, res, err)
		}
		// Read back as something else than this process last wrote there.
		w.Stale = s == nil || !kubesecret.Holds(s, labels, auths)
		p.Writes = append(p.Writes, w)
	}
	return p, nil
}

// read finds the backing namespace and lists its dockerconfigjson Secrets,
// as multihost sees them and by name.
func (t *Target) read(ctx context.Context, project string) (string, []multihost.Object, map[string]*corev1.Secret, error) {
	ns, err := t.backingNamespace(ctx)
	if err != nil {
		return "", nil, nil, err
	}
	secrets, err := t.list(ctx, ns)
	if err != nil {
		return "", nil, nil, err
	}
	objects := make([]multihost.Object, 0, len(secrets))
	byName := make(map[string]*corev1.Secret, len(secrets))
	for i := range secrets {
		s := &secrets[i]
		hosts, err := kubesecret.Hosts(s)
		objects = append(objects, multihost.Object{Key: s.Name, Name: s.Name, Title: "secret " + ns + "/" + s.Name,
			Hosts: hosts, Unknown: err != nil, Refused: refusal(s, project)})
		byName[s.Name] = s
	}
	return ns, objects, byName, nil
}

func (t *Target) backingNamespace(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.namespace != "" {
		return t.namespace, nil
	}
	ns, err := t.Cluster.BackingNamespace(ctx, t.Project)
	if err != nil {
		return "", err
	}
	t.namespace = ns
	return ns, nil
}

// list returns the backing namespace's dockerconfigjson Secrets, all pages.
// A field selector on type, not a label selector: a Secret made through /v3
// loses its label when Rancher relabels it. Listing Secrets in that namespace
// is what a Project Member may do.
func (t *Target) list(ctx context.Context, ns string) ([]corev1.Secret, error) {
	opts := metav1.ListOptions{FieldSelector: "type=" + string(corev1.SecretTypeDockerConfigJson), Limit: 500}
	var out []corev1.Secret
	var pages kubeapi.Pages
	for {
		list, err := t.Cluster.Client.Secrets(ns).Needs(secretVerbs...).List(ctx, opts)
		if err != nil {
			return nil, t.Cluster.explain(t.Project, &kubeapi.Error{Verb: "list", Resource: "secrets", Namespace: ns, Verbs: secretVerbs, Err: err})
		}
		for _, s := range list.Items {
			if s.Type == corev1.SecretTypeDockerConfigJson {
				out = append(out, s)
			}
		}
		if opts.Continue, err = pages.Next(list.Continue); err != nil {
			return nil, fmt.Errorf("list secrets in %s: %w", ns, err)
		} else if opts.Continue == "" {
			return out, nil
		}
	}
}

// explainWrite is the outcome of a write into namespace ns, a refusal
// naming the grant that lets it through.
func (t *Target) explainWrite(ns string, res refresher.Result, err error) (refresher.Result, error) {
	if err == nil {
		return res, nil
	}
	if isForbidden(err) {
		err = fmt.Errorf("%w; %s", err, grantHint(t.Project, &kubeapi.Error{Resource: "secrets", Namespace: ns, Verbs: secretVerbs}, t.Cluster.Proxy))
	}
	return refresher.ResultFailed, err
}

// owner is the rule for an existing Secret as the writer reads it: it is
// rewritten only when refusal finds it this process's for project and every
// host in it is managed.
func owner(project string, managed func(string) bool) func(*corev1.Secret) error {
	return func(s *corev1.Secret) error {
		if err := refusal(s, project); err != nil {
			return err
		}
		id := s.Namespace + "/" + s.Name
		hosts, err := kubesecret.Hosts(s)
		if err != nil {
			return fmt.Errorf("secret %s: %v; it is not rewritten: check it, or delete it", id, err)
		}
		if foreign := slices.DeleteFunc(hosts, managed); len(foreign) > 0 {
			return fmt.Errorf("secret %s also holds hosts this process does not manage (%s); it is never rewritten: move them to a Secret of their own, or delete it",
				id, multihost.HostList(foreign))
		}
		return nil
	}
}

// MadeThroughV3 reports whether s was made through Rancher's /v3 API (a
// dockerCredential): the label cattle.io/creator=norman, or — after Rancher
// 2.12 removed that label — either annotation /v3 sets.
func MadeThroughV3(s *corev1.Secret) bool {
	_, creator := s.Annotations[CreatorIDAnnotation]
	_, projectID := s.Annotations[ProjectIDAnnotation]
	return s.Labels[CreatorLabel] == CreatorNorman || creator || projectID
}

// refusal says why s is not this process's to change, naming it and the fix;
// nil when it is: its own, or made through /v3, for this project. Rancher's
// copies are Rancher's whatever they carry.
func refusal(s *corev1.Secret, project string) error {
	name := s.Namespace + "/" + s.Name
	pid := s.Annotations[ProjectIDAnnotation] // <cluster>:<project>
	if _, p, ok := strings.Cut(pid, ":"); ok {
		pid = p
	}
	switch {
	case kubesecret.IsRancherCopy(s):
		return fmt.Errorf("secret %s is a copy Rancher made of a project Secret (annotation %s); it is Rancher's and never changed by this process",
			name, kubesecret.RancherCopyAnnotation)
	case s.Labels[kubesecret.ManagedByLabel] != kubesecret.ManagedBy && !MadeThroughV3(s):
		return fmt.Errorf("secret %s exists and was made neither by this process (label %s=%s) nor through /v3 (label %s=%s or annotation %s); it is never changed: delete or rename it, or label it %s=%s to hand it over",
			name, kubesecret.ManagedByLabel, kubesecret.ManagedBy, CreatorLabel, CreatorNorman, CreatorIDAnnotation, kubesecret.ManagedByLabel, kubesecret.ManagedBy)
	case s.Labels[ProjectScopedLabel] != "" && s.Labels[ProjectScopedLabel] != project:
		return fmt.Errorf("secret %s is labelled %s=%s, another project; it is never changed", name, ProjectScopedLabel, s.Labels[ProjectScopedLabel])
	case pid != "" && pid != project:
		return fmt.Errorf("secret %s is annotated %s=%s, another project; it is never changed", name, ProjectIDAnnotation, s.Annotations[ProjectIDAnnotation])
	}
	return nil
}
