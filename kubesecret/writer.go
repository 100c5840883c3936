// Package kubesecret writes kubernetes.io/dockerconfigjson Secrets without
// clobbering anyone's: created, or updated in place with the resourceVersion
// last seen, other entries, keys, labels and annotations kept. The namespaces
// target, Rancher 2.12 project Secrets and the consumers write through it.
package kubesecret

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

const (
	// ManagedByLabel and ManagedBy mark the Secrets this daemon owns: one
	// without them is never changed
	// (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "rancher-ecr-credentials"

	// RancherCopyAnnotation marks a Secret Rancher 2.12+ copied from a
	// project-scoped Secret into a namespace of the project. It carries every
	// label of its source, ManagedByLabel included, and Rancher rewrites it
	// from the source: no writer of this daemon ever writes it
	// (docs/rancher-2.12.md).
	RancherCopyAnnotation = "management.cattle.io/project-scoped-secret-copy"

	// Results of Apply, as the refresher names them.
	Created   = refresher.ResultCreated
	Updated   = refresher.ResultUpdated
	Unchanged = refresher.ResultUnchanged
)

// conflictAttempts bounds the re-reads after 409 Conflicts in one call
// (client-go's retry.DefaultRetry makes as many).
const conflictAttempts = 5

// SecretsAPI is what the Writer calls on the Secrets of one namespace. The
// method names and signatures are client-go's typed SecretInterface's, which
// kubeapi's client offers too, so either serves as it is.
type SecretsAPI interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Secret, error)
	Create(ctx context.Context, s *corev1.Secret, opts metav1.CreateOptions) (*corev1.Secret, error)
	Update(ctx context.Context, s *corev1.Secret, opts metav1.UpdateOptions) (*corev1.Secret, error)
}

// IsRancherCopy reports whether s is a copy Rancher made of a project-scoped
// Secret.
func IsRancherCopy(s *corev1.Secret) bool { return s.Annotations[RancherCopyAnnotation] == "true" }

// Owned accepts a Secret that carries ManagedByLabel=ManagedBy, and names any
// other, with what to do about it. It is the default ownership rule of Apply.
func Owned(s *corev1.Secret) error {
	if s.Labels[ManagedByLabel] == ManagedBy {
		return nil
	}
	return fmt.Errorf("secret %s/%s exists and is not managed by this daemon (no label %s=%s); it is never changed: delete it, rename it, or label it to hand it over, or set KUBE_SECRET_NAME to another name",
		s.Namespace, s.Name, ManagedByLabel, ManagedBy)
}

// Writer writes kubernetes.io/dockerconfigjson Secrets without clobbering: it
// creates a Secret, or updates it in place (same uid) carrying the
// resourceVersion it last saw, so a change by anyone since makes the update
// fail with 409 and the Secret is read again, never overwritten. A Secret is
// never deleted, and never one Rancher copied. It is safe for concurrent use.
//
// Between writes it keeps a small record per Secret, not the Secret: its
// resourceVersion, a hash of what it holds, and — only when the Secret holds
// more than this daemon writes (others' entries, labels, annotations, keys) —
// that remainder. A refresh rebuilds the update from the record: one request,
// no read, no cache of the cluster's Secrets, no copy of any password. It is
// an update, not a patch, so writing takes the verbs it always took (get,
// create, update on secrets) and no RBAC rule written for them breaks.
type Writer struct {
	secrets func(namespace string) SecretsAPI

	mu   sync.Mutex
	recs map[string]*record // "namespace/name" → after this writer's last write or read
}

// NewWriter returns a Writer reaching the Secrets of each namespace through
// secrets (for client-go: the typed client's Secrets method).
func NewWriter(secrets func(namespace string) SecretsAPI) *Writer {
	return &Writer{secrets: secrets, recs: map[string]*record{}}
}

// Known reports whether the writer holds a record of namespace/name: it wrote
// the Secret, or read it as one it may write, and has seen nothing since.
func (w *Writer) Known(namespace, name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.recs[namespace+"/"+name] != nil
}

// Forget drops the record of namespace/name (the namespace left the
// selection); the next write reads the Secret again.
func (w *Writer) Forget(namespace, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.recs, namespace+"/"+name)
}

func (w *Writer) recall(key string) *record {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.recs[key]
}

func (w *Writer) keep(key string, r *record) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if r == nil {
		delete(w.recs, key)
		return
	}
	w.recs[key] = r
}

// Apply makes namespace/name a dockerconfigjson Secret that holds auths and
// carries labels, and returns Created, Updated or Unchanged. An existing
// Secret is refused when Rancher copied it, and is first given to own (nil:
// Owned), which refuses it with an error naming it when it is not this
// daemon's to change. Entries of an existing Secret for hosts not in auths are
// kept (dropping them is not this call's to decide), and so are its other
// labels, annotations, data keys and fields.
func (w *Writer) Apply(ctx context.Context, namespace, name string, labels map[string]string, auths map[string]Auth, own func(*corev1.Secret) error) (refresher.Result, error) {
	res, err := w.write(ctx, namespace, name, labels, auths, own, how{})
	return res, redactAuths(err, auths)
}

// ApplyFrom is Apply for a Secret the caller has just read (listed) as read;
// nil when it did not exist. The write starts from read, as from a record:
// after ownership is checked on it, one update carrying its resourceVersion,
// with no create attempt (409) and no second read, so a new process refreshes
// a Secret it listed with one request. A change made since read is a 409 and
// read again, never overwritten, as with a record. With drop it replaces the
// entries of the hosts drop reports, as Replace does.
func (w *Writer) ApplyFrom(ctx context.Context, namespace, name string, read *corev1.Secret, labels map[string]string, auths map[string]Auth, drop func(host string) bool, own func(*corev1.Secret) error) (refresher.Result, error) {
	res, err := w.write(ctx, namespace, name, labels, auths, own, how{read: read, drop: drop})
	return res, redactAuths(err, auths)
}

// CheckFrom is Check starting from read, as ApplyFrom does.
func (w *Writer) CheckFrom(ctx context.Context, namespace, name string, read *corev1.Secret, labels map[string]string, auths map[string]Auth, drop func(host string) bool, own func(*corev1.Secret) error) (refresher.Result, error) {
	res, err := w.write(ctx, namespace, name, labels, auths, own, how{dry: true, read: read, drop: drop})
	return res, redactAuths(err, auths)
}

// Replace is Apply for a Secret whose entries of the hosts drop reports are
// all this daemon's to decide: of those hosts it keeps exactly auths', the
// others' entries are removed (a namespace whose AWS identity changed keeps
// no entry of the one before). Entries of other hosts are kept, as by Apply.
// With no auths it creates nothing, and a Secret that is not this daemon's
// is left as it is without an error: there is nothing of its own to take
// back.
func (w *Writer) Replace(ctx context.Context, namespace, name string, labels map[string]string, auths map[string]Auth, drop func(host string) bool, own func(*corev1.Secret) error) (refresher.Result, error) {
	res, err := w.write(ctx, namespace, name, labels, auths, own, how{drop: drop})
	return res, redactAuths(err, auths)
}

// CheckReplace answers what Replace would do, as Check answers for Apply.
func (w *Writer) CheckReplace(ctx context.Context, namespace, name string, labels map[string]string, auths map[string]Auth, drop func(host string) bool, own func(*corev1.Secret) error) (refresher.Result, error) {
	res, err := w.write(ctx, namespace, name, labels, auths, own, how{drop: drop, dry: true})
	return res, redactAuths(err, auths)
}

// Check answers what Apply would do, through the API server's dry run
// (dryRun=All): the same reads, the same refusals (RBAC, ownership, Rancher
// copies, admission), nothing stored and nothing remembered.
func (w *Writer) Check(ctx context.Context, namespace, name string, labels map[string]string, auths map[string]Auth, own func(*corev1.Secret) error) (refresher.Result, error) {
	res, err := w.write(ctx, namespace, name, labels, auths, own, how{dry: true})
	return res, redactAuths(err, auths)
}

func dryRunOpt(dry bool) []string {
	if dry {
		return []string{metav1.DryRunAll}
	}
	return nil
}

// how is what a write does besides setting auths.
type how struct {
	// drop, when set, names the hosts whose entries the Secret keeps only
	// in auths (Replace).
	drop func(host string) bool
	// dry goes through the server's dry run (Check).
	dry bool
	// read is the Secret the caller just read (ApplyFrom), nil when none.
	read *corev1.Secret
}

func (w *Writer) write(ctx context.Context, namespace, name string, labels map[string]string, auths map[string]Auth, own func(*corev1.Secret) error, h how) (refresher.Result, error) {
	if own == nil {
		own = Owned
	}
	drop, dry, read := h.drop, h.dry, h.read
	// takeBack: only entries to remove, nothing to create.
	takeBack := drop != nil && len(auths) == 0
	key := namespace + "/" + name
	api := w.secrets(namespace)
	hosts := hostsKey(auths)
	keep := func(r *record) {
		if !dry {
			w.keep(key, r)
		}
	}
	create := func() (refresher.Result, error) {
		if takeBack {
			return Unchanged, nil
		}
		data, err := dockerConfig{}.with(auths)
		if err != nil {
			return "", err
		}
		s, err := api.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: maps.Clone(labels)},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
		}, metav1.CreateOptions{DryRun: dryRunOpt(dry)})
		if err != nil {
			return "", err
		}
		keep(recordOf(s, labels, auths, hosts))
		return Created, nil
	}
	rec := w.recall(key)
	if read != nil { // newer than any record: it was read after this writer's last write
		if err := refuse(read, own); err != nil {
			keep(nil)
			return "", refresher.Permanent(err)
		}
		if r := recordOf(read, labels, auths, hosts); r != nil {
			rec = r
			keep(rec)
		}
	}
	if rec == nil && !takeBack {
		res, err := create()
		if !apierrors.IsAlreadyExists(err) {
			return res, wrap("create", namespace, name, err)
		}
	}
	for range conflictAttempts {
		var (
			cur   *corev1.Secret
			base  dockerConfig
			have  [sha256.Size]byte
			fresh = rec == nil || rec.hosts != hosts // rebuilt from the record, or read
		)
		if !fresh {
			cur, base, have = rec.rebuild(namespace, name, labels), rec.base(auths), rec.sum
		} else {
			s, err := api.Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) { // deleted since
				keep(nil)
				res, err := create()
				return res, wrap("create", namespace, name, err)
			}
			if err != nil {
				return "", wrap("get", namespace, name, err)
			}
			if err := refuse(s, own); err != nil {
				keep(nil)
				if takeBack {
					return Unchanged, nil // not this daemon's: nothing of its own in it
				}
				return "", refresher.Permanent(err)
			}
			cur, base, have = s, without(s.Data[corev1.DockerConfigJsonKey], auths), sumOf(s.Data[corev1.DockerConfigJsonKey], s.Labels, labels)
		}
		if drop != nil {
			base = base.dropping(drop)
		}
		data, err := base.with(auths)
		if err != nil {
			return "", err
		}
		if sumOf(data, labels, labels) == have {
			if fresh {
				keep(recordOf(cur, labels, auths, hosts))
			}
			return Unchanged, nil
		}
		if cur.Labels == nil {
			cur.Labels = map[string]string{}
		}
		maps.Copy(cur.Labels, labels)
		if cur.Data == nil {
			cur.Data = map[string][]byte{}
		}
		cur.Data[corev1.DockerConfigJsonKey] = data
		// cur carries the resourceVersion last seen: a change since is a 409.
		u, err := api.Update(ctx, cur, metav1.UpdateOptions{DryRun: dryRunOpt(dry)})
		switch {
		case apierrors.IsConflict(err):
			rec = nil // read again
			continue
		case apierrors.IsNotFound(err): // deleted since
			keep(nil)
			res, err := create()
			return res, wrap("create", namespace, name, err)
		case err != nil:
			return "", wrap("update", namespace, name, err)
		}
		keep(recordOf(u, labels, auths, hosts))
		return Updated, nil
	}
	keep(nil)
	return "", wrap("update", namespace, name, apierrors.NewConflict(corev1.Resource("secrets"), name,
		fmt.Errorf("changed by someone else on each of %d attempts", conflictAttempts)))
}

// ErrRancherCopy is (wrapped in) the refusal of a Secret Rancher copied.
var ErrRancherCopy = errors.New("a copy Rancher made of a project Secret")

// refuse says why s is not the caller's to write, or nil.
func refuse(s *corev1.Secret, own func(*corev1.Secret) error) error {
	if IsRancherCopy(s) {
		return fmt.Errorf("secret %s/%s is %w (annotation %s=true) and Rancher rewrites it from its source; it is never written here",
			s.Namespace, s.Name, ErrRancherCopy, RancherCopyAnnotation)
	}
	if err := own(s); err != nil {
		return err
	}
	if s.Type != corev1.SecretTypeDockerConfigJson {
		return fmt.Errorf("secret %s/%s has type %s, not %s, and a Secret's type cannot change: delete it and it is created anew",
			s.Namespace, s.Name, s.Type, corev1.SecretTypeDockerConfigJson)
	}
	return nil
}

// Holds reports whether s, as read, holds auths and carries labels already:
// what Apply would leave unchanged.
func Holds(s *corev1.Secret, labels map[string]string, auths map[string]Auth) bool {
	if s.Type != corev1.SecretTypeDockerConfigJson {
		return false
	}
	old := s.Data[corev1.DockerConfigJsonKey]
	data, err := without(old, auths).with(auths)
	if err != nil || !bytes.Equal(data, old) {
		return false
	}
	for k, v := range labels {
		if s.Labels[k] != v {
			return false
		}
	}
	return true
}
