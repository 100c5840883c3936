package projectsecret

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/kube"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/norman"
)

const (
	// ProjectScopedLabel marks a Secret of a project's backing namespace that
	// Rancher 2.12+ copies into every namespace of the project; its value is the
	// project id (p-xxxxx).
	ProjectScopedLabel = "management.cattle.io/project-scoped-secret"
	// CreatorLabel = CreatorNorman marks a Secret made through /v3, e.g. a
	// dockerCredential this process wrote before the upgrade to 2.12.
	CreatorLabel  = "cattle.io/creator"
	CreatorNorman = "norman"
)

// Target is one Rancher 2.x project, written through Kubernetes.
type Target struct {
	Cluster *Cluster
	// Project is <cluster id>:<project id>.
	Project string

	mu        sync.Mutex
	namespace string // the backing namespace, once found (it never changes)
}

var _ refresher.Target = (*Target)(nil)

// Writing into a project: the Secret is named as on /v3 (ecr-<account>-<region>,
// see norman.CredentialName), so imagePullSecrets that name it keep working
// when Rancher is upgraded. The /v3 no-loss rule holds: a Secret is updated in
// place only when every host in it is one this process manages and it is this
// process's own (label app.kubernetes.io/managed-by) or was made through /v3
// (label cattle.io/creator=norman, which gains the project-scoped label and
// the ownership label). A Secret holding any other host is never rewritten.

// Sync writes the due tokens into the project's backing namespace.
func (t *Target) Sync(ctx context.Context, due, all []refresher.Token, rec *refresher.Recorder) error {
	ns, err := t.backingNamespace(ctx)
	if err != nil {
		return err
	}
	_, project, _ := SplitProject(t.Project)
	w := &secretRun{t: t, rec: rec, ns: ns, project: project, tokens: map[string]refresher.Token{},
		ours: map[string][]*corev1.Secret{}, shared: map[string][]string{}, byName: map[string]*corev1.Secret{}, done: map[string]error{}}
	for _, tok := range all {
		w.tokens[tok.Host] = tok
	}
	if err := w.list(ctx); err != nil {
		return err
	}
	for _, tok := range due {
		rec.Done(tok, w.syncHost(ctx, tok))
	}
	return nil
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

// secretRun is one project's Secrets during one run.
type secretRun struct {
	t           *Target
	rec         *refresher.Recorder
	ns, project string
	tokens      map[string]refresher.Token  // every token fetched this run, by host
	ours        map[string][]*corev1.Secret // host → Secrets this process may rewrite that hold it
	shared      map[string][]string         // host → names of Secrets that also hold foreign hosts
	byName      map[string]*corev1.Secret
	done        map[string]error // Secret name → result, one write per Secret per run
}

// list reads the backing namespace's Secrets this process may own: its own and
// those made through /v3. Other Secrets are never read.
func (w *secretRun) list(ctx context.Context) error {
	for _, sel := range []string{kube.ManagedByLabel + "=" + kube.ManagedBy, CreatorLabel + "=" + CreatorNorman} {
		opts := metav1.ListOptions{LabelSelector: sel, Limit: 500}
		for {
			list, err := w.t.Cluster.Client.CoreV1().Secrets(w.ns).List(ctx, opts)
			if err != nil {
				return w.t.Cluster.explain(w.t.Project, &kube.Error{Verb: "list", Resource: "secrets", Namespace: w.ns, Verbs: secretVerbs, Err: err})
			}
			for i := range list.Items {
				s := &list.Items[i]
				if s.Type != corev1.SecretTypeDockerConfigJson || w.byName[s.Name] != nil {
					continue
				}
				w.byName[s.Name] = s
				w.classify(s)
			}
			if opts.Continue = list.Continue; opts.Continue == "" {
				break
			}
		}
	}
	return nil
}

// secretVerbs are what the project's Secrets take.
var secretVerbs = []string{"get", "list", "create", "update"}

// classify files a Secret under each managed host it holds: in ours when it is
// this process's to rewrite, else in shared (reported, never rewritten).
func (w *secretRun) classify(s *corev1.Secret) {
	hosts := Hosts(s)
	mine := w.own(s) == nil
	for _, h := range hosts {
		switch {
		case !w.rec.Managed(h):
		case mine:
			w.ours[h] = append(w.ours[h], s)
		default:
			w.shared[h] = append(w.shared[h], s.Name)
		}
	}
}

// own accepts a Secret this process may rewrite, and names any other with
// what to do about it. The writer asks it again after every re-read.
func (w *secretRun) own(s *corev1.Secret) error {
	name := w.ns + "/" + s.Name
	if s.Labels[kube.ManagedByLabel] != kube.ManagedBy && s.Labels[CreatorLabel] != CreatorNorman {
		return fmt.Errorf("secret %s exists and was made neither by this process (label %s=%s) nor through /v3 (label %s=%s); it is never changed: delete or rename it, or label it %s=%s to hand it over",
			name, kube.ManagedByLabel, kube.ManagedBy, CreatorLabel, CreatorNorman, kube.ManagedByLabel, kube.ManagedBy)
	}
	if p := s.Labels[ProjectScopedLabel]; p != "" && p != w.project {
		return fmt.Errorf("secret %s is labelled %s=%s, another project; it is never changed", name, ProjectScopedLabel, p)
	}
	if foreign := slices.DeleteFunc(Hosts(s), w.rec.Managed); len(foreign) > 0 {
		return fmt.Errorf("secret %s also holds hosts this process does not manage (%s); it is never rewritten: move them to a Secret of their own, or delete it",
			name, strings.Join(foreign, ","))
	}
	return nil
}

// syncHost writes one token into every Secret of the project that is ours and
// holds its host, or into one named as on /v3.
func (w *secretRun) syncHost(ctx context.Context, t refresher.Token) error {
	log := w.rec.Log().WithFields(logrus.Fields{"registry": t.Host, "namespace": w.ns})
	if names := w.shared[t.Host]; len(names) > 0 {
		log.WithField("secrets", strings.Join(names, ",")).
			Warn("secret also holds hosts this process does not manage; left untouched")
	}
	targets := w.ours[t.Host]
	if len(targets) == 0 {
		name := norman.CredentialName(t)
		if s := w.byName[name]; s != nil {
			if err := w.own(s); err != nil {
				return refresher.Permanent(err)
			}
		}
		targets = []*corev1.Secret{{ObjectMeta: metav1.ObjectMeta{Name: name}}}
	}
	var errs []error
	for _, s := range targets {
		err, seen := w.done[s.Name]
		if !seen {
			err = w.write(ctx, s, t)
			w.done[s.Name] = err
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// write makes Secret s hold t and fresh tokens for every other host in it.
func (w *secretRun) write(ctx context.Context, s *corev1.Secret, t refresher.Token) error {
	log := w.rec.Log().WithFields(logrus.Fields{"registry": t.Host, "secret": w.ns + "/" + s.Name})
	auths := map[string]kube.Auth{t.Host: {Username: t.Username, Password: t.Password}}
	var others []refresher.Token
	for _, h := range Hosts(s) {
		if h == t.Host {
			continue
		}
		tok, ok := w.tokens[h]
		if !ok { // kept as it is by the writer; refreshed when its token is fetched
			log.WithField("other", h).Warn("secret also holds a managed host whose token could not be fetched this run; that entry is kept as it is")
			continue
		}
		auths[h] = kube.Auth{Username: tok.Username, Password: tok.Password}
		others = append(others, tok)
	}
	id := w.ns + "/" + s.Name
	c := kube.HashAuths(auths)
	if w.rec.Unchanged(id, c, t) {
		log.Debug("secret unchanged")
		return nil
	}
	if w.rec.DryRun() {
		log.Info("dry run: would write project-scoped secret")
		return nil
	}
	adopt := s.Labels[kube.ManagedByLabel] != kube.ManagedBy && s.UID != ""
	labels := map[string]string{kube.ManagedByLabel: kube.ManagedBy, ProjectScopedLabel: w.project}
	res, err := w.t.Cluster.Writer.Apply(ctx, w.ns, s.Name, labels, auths, w.own)
	if err != nil {
		if isForbidden(err) {
			err = fmt.Errorf("%w; %s", err, grantHint(w.t.Project, &kube.Error{Resource: "secrets", Namespace: w.ns, Verbs: secretVerbs}, w.t.Cluster.Proxy))
		}
		return err
	}
	w.rec.Written(id, c, res, t, others...)
	log = log.WithFields(logrus.Fields{"result": res, "expires_at": t.ExpiresAt.UTC().Format(time.RFC3339)})
	if adopt {
		log = log.WithField("adopted", "made through /v3; now labelled "+ProjectScopedLabel)
	}
	log.Info("project-scoped secret written")
	return nil
}

// Hosts returns the registry hosts a dockerconfigjson Secret holds, as
// NormalizeHost gives them (a key that is no host stays as it is, and so is
// never a managed host). Nothing else of the content is kept.
func Hosts(s *corev1.Secret) []string {
	var cfg struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	if json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg) != nil {
		return []string{"(unreadable " + corev1.DockerConfigJsonKey + ")"}
	}
	out := make([]string, 0, len(cfg.Auths))
	for raw := range cfg.Auths {
		h, err := refresher.NormalizeHost(raw)
		if err != nil {
			h = raw
		}
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}
