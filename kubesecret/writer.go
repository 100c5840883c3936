// Package kubesecret writes kubernetes.io/dockerconfigjson Secrets without
// clobbering anyone's: created, or updated in place with the resourceVersion
// last seen, other entries, keys, labels and annotations kept. The namespaces
// target, Rancher 2.12 project Secrets and the consumers write through it.
package kubesecret

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

const (
	// ManagedByLabel and ManagedBy mark the Secrets this daemon owns: one
	// without them is never changed
	// (https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/).
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "rancher-ecr-credentials"

	// Results of Apply, as the refresher names them.
	Created   = refresher.ResultCreated
	Updated   = refresher.ResultUpdated
	Unchanged = refresher.ResultUnchanged
)

// secretVerbs are what writing a Secret takes, for RBAC hints.
var secretVerbs = []string{"get", "create", "update"}

// Auth is one registry's entry in a dockerconfigjson Secret.
type Auth struct {
	Username, Password string
}

// Auths returns the entries of every token, by host.
func Auths(tokens []refresher.Token) map[string]Auth {
	m := make(map[string]Auth, len(tokens))
	for _, t := range tokens {
		m[t.Host] = Auth{Username: t.Username, Password: t.Password}
	}
	return m
}

// Owned accepts a Secret that carries ManagedByLabel=ManagedBy, and names any
// other, with what to do about it. It is the default ownership rule of Apply.
func Owned(s *corev1.Secret) error {
	if s.Labels[ManagedByLabel] == ManagedBy {
		return nil
	}
	return fmt.Errorf("secret %s/%s exists and is not managed by this daemon (no label %s=%s); it is never changed: delete it, rename it, or label it to hand it over, or set KUBE_SECRET_NAME to another name",
		s.Namespace, s.Name, ManagedByLabel, ManagedBy)
}

// Writer writes kubernetes.io/dockerconfigjson Secrets without clobbering:
// it creates a Secret, or updates it in place (same uid) with the
// resourceVersion it last saw, so a concurrent change makes the update fail
// with 409 and is read again, never overwritten. A Secret is never deleted.
// Both the namespaces target and the Rancher project-secret target write
// through it. It is safe for concurrent use.
//
// It remembers each Secret as the server returned it after its own write, so
// a refresh is one request (an update carrying that resourceVersion) and needs
// neither a read nor a cache of the cluster's Secrets; a Secret someone else
// changed since costs a read and a second update.
type Writer struct {
	mu   sync.Mutex
	last map[string]*corev1.Secret // namespace/name → as the server returned it after our write

	// Client reaches the Secrets.
	Client corev1client.SecretsGetter
}

// NewWriter returns a Writer over c.
func NewWriter(c corev1client.SecretsGetter) *Writer {
	return &Writer{Client: c, last: map[string]*corev1.Secret{}}
}

func (w *Writer) recall(key string) *corev1.Secret {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := w.last[key]; s != nil {
		return s.DeepCopy()
	}
	return nil
}

func (w *Writer) keep(key string, s *corev1.Secret) {
	s = s.DeepCopy()
	s.ManagedFields = nil // an update without them keeps the server's
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last = map[string]*corev1.Secret{}
	}
	w.last[key] = s
}

// Apply makes namespace/name a dockerconfigjson Secret that holds auths and
// carries labels, and returns Created, Updated or Unchanged. An existing
// Secret is first given to own (nil: Owned), which refuses it with an error
// naming it when it is not this daemon's to change. Entries of an existing
// Secret for hosts not in auths are kept (dropping them is not this call's to
// decide), and so are its other labels, annotations, data keys and fields.
func (w *Writer) Apply(ctx context.Context, namespace, name string, labels map[string]string, auths map[string]Auth, own func(*corev1.Secret) error) (refresher.Result, error) {
	res, err := w.apply(ctx, namespace, name, labels, auths, own)
	if err != nil {
		var secrets []string
		for _, a := range auths {
			secrets = append(secrets, a.Password, base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
		}
		err = redacted{err, secrets}
	}
	return res, err
}

// redacted is an error whose text never holds what was sent: a server may
// echo the request in its answer. Errors.Is/As still see the cause.
type redacted struct {
	err     error
	secrets []string
}

func (r redacted) Unwrap() error { return r.err }

func (r redacted) Error() string {
	s := r.err.Error()
	for _, sec := range r.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "[REDACTED]")
		}
	}
	return s
}

func (w *Writer) apply(ctx context.Context, namespace, name string, labels map[string]string, auths map[string]Auth, own func(*corev1.Secret) error) (refresher.Result, error) {
	if own == nil {
		own = Owned
	}
	key := namespace + "/" + name
	secrets := w.Client.Secrets(namespace)
	create := func() (refresher.Result, error) {
		data, err := dockerConfigJSON(nil, auths)
		if err != nil {
			return "", err
		}
		s, err := secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
			Type:       corev1.SecretTypeDockerConfigJson,
			Data:       map[string][]byte{corev1.DockerConfigJsonKey: data},
		}, metav1.CreateOptions{})
		if err != nil {
			return "", err
		}
		w.keep(key, s)
		return Created, nil
	}
	cur := w.recall(key)
	if cur == nil {
		res, err := create()
		if !apierrors.IsAlreadyExists(err) {
			return res, kubeapi.Wrap("create", "secrets", namespace, name, secretVerbs, err)
		}
	}
	var result refresher.Result
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if cur == nil {
			s, err := secrets.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return kubeapi.Wrap("get", "secrets", namespace, name, secretVerbs, err)
			}
			cur = s
		}
		s := cur
		cur = nil // after a conflict, read again
		if err := own(s); err != nil {
			return refresher.Permanent(err)
		}
		if s.Type != corev1.SecretTypeDockerConfigJson {
			return refresher.Permanent(fmt.Errorf("secret %s has type %s, not %s, and a Secret's type cannot change: delete it and it is created anew",
				key, s.Type, corev1.SecretTypeDockerConfigJson))
		}
		data, err := dockerConfigJSON(s.Data[corev1.DockerConfigJsonKey], auths)
		if err != nil {
			return fmt.Errorf("secret %s: %w", key, err)
		}
		if bytes.Equal(data, s.Data[corev1.DockerConfigJsonKey]) && hasLabels(s, labels) {
			w.keep(key, s)
			result = Unchanged
			return nil
		}
		if s.Labels == nil {
			s.Labels = map[string]string{}
		}
		maps.Copy(s.Labels, labels)
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		s.Data[corev1.DockerConfigJsonKey] = data
		// s carries the resourceVersion last seen: a change since then is a 409.
		u, err := secrets.Update(ctx, s, metav1.UpdateOptions{})
		switch {
		case apierrors.IsConflict(err):
			return err // RetryOnConflict reads again
		case apierrors.IsNotFound(err): // deleted since we wrote it
			result, err = create()
			return kubeapi.Wrap("create", "secrets", namespace, name, secretVerbs, err)
		case err != nil:
			return kubeapi.Wrap("update", "secrets", namespace, name, secretVerbs, err)
		}
		w.keep(key, u)
		result = Updated
		return nil
	})
	if apierrors.IsConflict(err) {
		var e *kubeapi.Error
		if !errors.As(err, &e) {
			err = kubeapi.Wrap("update", "secrets", namespace, name, secretVerbs, fmt.Errorf("changed by someone else on each of %d attempts: %w", retry.DefaultRetry.Steps, err))
		}
	}
	if err != nil {
		return "", err
	}
	return result, nil
}

// Holds reports whether s, as read, holds auths and carries labels already:
// what Apply would leave unchanged.
func Holds(s *corev1.Secret, labels map[string]string, auths map[string]Auth) bool {
	data, err := dockerConfigJSON(s.Data[corev1.DockerConfigJsonKey], auths)
	return err == nil && s.Type == corev1.SecretTypeDockerConfigJson && bytes.Equal(data, s.Data[corev1.DockerConfigJsonKey]) && hasLabels(s, labels)
}

func hasLabels(s *corev1.Secret, labels map[string]string) bool {
	for k, v := range labels {
		if s.Labels[k] != v {
			return false
		}
	}
	return true
}

type dockerAuth struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Auth     string `json:"auth"`
}

// dockerConfigJSON is old's {"auths": …} with auths put in; the other
// entries of old are kept. Keys are sorted (encoding/json sorts map keys), so
// the same content is the same bytes. An old value that is not valid JSON is
// replaced: the Secret is this daemon's.
func dockerConfigJSON(old []byte, auths map[string]Auth) ([]byte, error) {
	var cfg struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	if len(old) > 0 {
		_ = json.Unmarshal(old, &cfg)
	}
	if cfg.Auths == nil {
		cfg.Auths = map[string]json.RawMessage{}
	}
	for h, a := range auths {
		b, err := json.Marshal(dockerAuth{Username: a.Username, Password: a.Password,
			Auth: base64.StdEncoding.EncodeToString([]byte(a.Username + ":" + a.Password))})
		if err != nil {
			return nil, fmt.Errorf("encode the entry for %s", h) // no %w: the value holds a password
		}
		cfg.Auths[h] = b
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode .dockerconfigjson")
	}
	return b, nil
}
