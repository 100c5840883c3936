package kubesecret

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// ErrNoSecret is (wrapped in) the error of a FieldWriter write whose Secret
// does not exist: a consumer's Secret is the consumer's to create.
var ErrNoSecret = errors.New("does not exist")

// Edit is what a FieldWriter sets in a Secret: the values of the data keys a
// consumer's format owns (BasicAuth, DockerConfig), computed from the Secret
// as read. Every other key, label, annotation, and the type, stay as they are.
type Edit struct {
	// Check, when set, refuses the Secret as read (a type or label other than
	// the plan saw); its error is returned as it is.
	Check func(s *corev1.Secret) error
	set   func(s *corev1.Secret) (map[string][]byte, error)
	// secrets are what no error may show: passwords and their encodings.
	secrets []string
}

// BasicAuth sets the keys username and password, as a
// kubernetes.io/basic-auth Secret holds them
// (https://kubernetes.io/docs/concepts/configuration/secret/#basic-authentication-secret)
// and Argo CD and Rancher read them.
func BasicAuth(a Auth) Edit {
	return Edit{
		set: func(*corev1.Secret) (map[string][]byte, error) {
			return map[string][]byte{corev1.BasicAuthUsernameKey: []byte(a.Username), corev1.BasicAuthPasswordKey: []byte(a.Password)}, nil
		},
		secrets: []string{a.Password, authOf(a)},
	}
}

// DockerConfig sets host's entry (username, password, auth) in the Docker
// config held at key (.dockerconfigjson, or config.json as docker login
// writes it), editing its text in place: other entries and members stay byte
// for byte. A key holding something that is not a Docker config is refused,
// never replaced.
func DockerConfig(key, host string, a Auth) Edit {
	return Edit{
		set: func(s *corev1.Secret) (map[string][]byte, error) {
			entry, err := entryOf(host, a)
			if err != nil {
				return nil, err
			}
			data, err := setEntry(s.Data[key], host, entry)
			if err != nil {
				return nil, refresher.Permanent(fmt.Errorf("secret %s/%s: key %s is %v, not a Docker config; it is never replaced: fix or remove the key", s.Namespace, s.Name, key, err))
			}
			return map[string][]byte{key: data}, nil
		},
		secrets: []string{a.Password, authOf(a)},
	}
}

// FieldWriter writes some data keys of Secrets that others own (a consumer's
// Secret: Argo CD's repository Secret, a ClusterRepo's clientSecret), in
// place: it reads the Secret, sets the keys an Edit owns, and updates it
// carrying the resourceVersion it read, so a change by anyone in between is a
// 409 and the Secret is read again, never overwritten. It never creates or
// deletes a Secret, never writes one Rancher copied, and changes no other
// key, label, annotation or the type. Its record per Secret is the
// resourceVersion after its last write or read: no copy of the Secret, no
// password. It is safe for concurrent use.
type FieldWriter struct {
	secrets func(namespace string) SecretsAPI

	mu  sync.Mutex
	rvs map[string]string // "namespace/name" → resourceVersion
}

// NewFieldWriter returns a FieldWriter reaching the Secrets of each namespace
// through secrets.
func NewFieldWriter(secrets func(namespace string) SecretsAPI) *FieldWriter {
	return &FieldWriter{secrets: secrets, rvs: map[string]string{}}
}

// Current reports whether namespace/name is at resourceVersion as this
// writer last wrote or read it: false when someone changed it since (or it
// was never written), so what it holds must be checked again.
func (w *FieldWriter) Current(namespace, name, resourceVersion string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	rv, ok := w.rvs[namespace+"/"+name]
	return ok && rv == resourceVersion
}

// Known reports whether the writer holds a record of namespace/name.
func (w *FieldWriter) Known(namespace, name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.rvs[namespace+"/"+name]
	return ok
}

// Forget drops the record of namespace/name (it is no consumer any more).
func (w *FieldWriter) Forget(namespace, name string) { w.keep(namespace+"/"+name, "") }

func (w *FieldWriter) keep(key, rv string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if rv == "" {
		delete(w.rvs, key)
	} else {
		w.rvs[key] = rv
	}
}

// Apply sets e's keys in namespace/name and returns Updated, or Unchanged
// when they held those values already.
func (w *FieldWriter) Apply(ctx context.Context, namespace, name string, e Edit) (refresher.Result, error) {
	return w.write(ctx, namespace, name, e, false)
}

// Check answers what Apply would do through the API server's dry run: the
// same reads and refusals, nothing stored or remembered.
func (w *FieldWriter) Check(ctx context.Context, namespace, name string, e Edit) (refresher.Result, error) {
	return w.write(ctx, namespace, name, e, true)
}

func (w *FieldWriter) write(ctx context.Context, namespace, name string, e Edit, dry bool) (res refresher.Result, err error) {
	key := namespace + "/" + name
	api := w.secrets(namespace)
	var written map[string][]byte
	defer func() { err = redactValues(err, e.secrets, written) }()
	keep := func(rv string) {
		if !dry {
			w.keep(key, rv)
		}
	}
	for range conflictAttempts {
		s, err := api.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			keep("")
			return "", refresher.Permanent(fmt.Errorf("secret %s/%s %w", namespace, name, ErrNoSecret))
		}
		if err != nil {
			return "", wrap("get", namespace, name, err)
		}
		if IsRancherCopy(s) {
			keep("")
			return "", refresher.Permanent(fmt.Errorf("secret %s/%s is %w (annotation %s=true) and Rancher rewrites it from its source; it is never written here",
				namespace, name, ErrRancherCopy, RancherCopyAnnotation))
		}
		if e.Check != nil {
			if err := e.Check(s); err != nil {
				keep("")
				return "", err
			}
		}
		vals, err := e.set(s)
		if err != nil {
			keep("")
			return "", err
		}
		written = vals
		if holds(s, vals) {
			keep(s.ResourceVersion)
			return Unchanged, nil
		}
		if s.Data == nil {
			s.Data = map[string][]byte{}
		}
		maps.Copy(s.Data, vals)
		// s carries the resourceVersion read: a change since is a 409.
		u, err := api.Update(ctx, s, metav1.UpdateOptions{DryRun: dryRunOpt(dry)})
		switch {
		case apierrors.IsConflict(err), apierrors.IsNotFound(err):
			continue // read again
		case err != nil:
			return "", wrap("update", namespace, name, err)
		}
		keep(u.ResourceVersion)
		return Updated, nil
	}
	keep("")
	return "", wrap("update", namespace, name, apierrors.NewConflict(corev1.Resource("secrets"), name,
		fmt.Errorf("changed by someone else on each of %d attempts", conflictAttempts)))
}

// holds reports whether s holds vals already.
func holds(s *corev1.Secret, vals map[string][]byte) bool {
	for k, v := range vals {
		if cur, ok := s.Data[k]; !ok || !bytes.Equal(cur, v) {
			return false
		}
	}
	return true
}

// redactValues keeps secrets, and the values written that hold one with their
// base64 forms (as a Secret's data travels), out of err's text; errors.Is and errors.As still
// see the cause.
func redactValues(err error, secrets []string, vals map[string][]byte) error {
	if err == nil {
		return nil
	}
	out := slices.Clone(secrets)
	for _, k := range slices.Sorted(maps.Keys(vals)) {
		v := string(vals[k])
		if slices.ContainsFunc(secrets, func(s string) bool { return s != "" && strings.Contains(v, s) }) {
			out = append(out, base64.StdEncoding.EncodeToString(vals[k]), v)
		}
	}
	return redacted{err, out}
}
