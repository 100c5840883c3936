package kubesecret

import (
	"crypto/sha256"
	"errors"
	"hash/fnv"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
)

// secretVerbs are what writing a Secret takes, for RBAC hints.
var secretVerbs = []string{"get", "create", "update"}

// record is what the Writer keeps of a Secret between writes: enough to
// rebuild the update without reading it, and to tell an unchanged one, but no
// password. About a hundred bytes for a Secret that holds only what this
// daemon writes (measured in targets/namespaces' benchmark).
type record struct {
	// resourceVersion is the Secret's after the last write or read: the
	// update carries it, so any change since is a 409, never overwritten.
	// (It is an etcd revision, unique across objects: a Secret deleted and
	// made again under the name never has it, so no uid is needed.)
	resourceVersion string
	// hosts identifies the set of hosts written as this daemon's: the record
	// rebuilds a Secret only for the same set (one that lost a host is read
	// again, so that host's entry is kept as the Secret holds it).
	hosts uint64
	// sum is the hash of what the Secret holds that a write sets: its
	// .dockerconfigjson value and the values of the labels written.
	sum [sha256.Size]byte
	// rest is nil when the Secret holds only what is written (the labels
	// given, the entries of the hosts written, its type); otherwise the
	// Secret without this daemon's entries and without managedFields: other
	// entries, keys, labels, annotations, owners, which an update must carry.
	rest *corev1.Secret
}

// recordOf is the record of s, as the server answered or returned it.
func recordOf(s *corev1.Secret, labels map[string]string, auths map[string]Auth, hosts uint64) *record {
	r := &record{resourceVersion: s.ResourceVersion, hosts: hosts, sum: sumOf(s.Data[corev1.DockerConfigJsonKey], s.Labels, labels)}
	base := without(s.Data[corev1.DockerConfigJsonKey], auths)
	rest := s.DeepCopy()
	rest.ManagedFields, rest.ResourceVersion = nil, ""
	if base.empty() {
		delete(rest.Data, corev1.DockerConfigJsonKey)
	} else if b, err := base.encode(); err == nil {
		rest.Data[corev1.DockerConfigJsonKey] = b
	} else {
		return nil // cannot happen (it was just decoded); read again next time
	}
	// What is left once the fields a rebuild sets, and those the server keeps
	// on its own (uid, creation time), are taken out: nothing, or the rest.
	plain := rest.DeepCopy()
	plain.TypeMeta = metav1.TypeMeta{}
	plain.Name, plain.Namespace, plain.UID, plain.CreationTimestamp, plain.Generation = "", "", "", metav1.Time{}, 0
	if maps.Equal(plain.Labels, labels) {
		plain.Labels = nil
	}
	if plain.Type == corev1.SecretTypeDockerConfigJson {
		plain.Type = ""
	}
	if len(plain.Data) == 0 {
		plain.Data = nil
	}
	if !apiequality.Semantic.DeepEqual(plain, &corev1.Secret{}) {
		r.rest = rest
	}
	return r
}

// rebuild returns the Secret to update, without this daemon's entries: what
// the Secret held at the last write or read, carrying its resourceVersion.
func (r *record) rebuild(namespace, name string, labels map[string]string) *corev1.Secret {
	if r.rest == nil {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, ResourceVersion: r.resourceVersion, Labels: maps.Clone(labels)},
			Type:       corev1.SecretTypeDockerConfigJson,
		}
	}
	s := r.rest.DeepCopy()
	s.ResourceVersion = r.resourceVersion
	return s
}

// base is the Docker config the Secret held besides this daemon's entries.
func (r *record) base(auths map[string]Auth) dockerConfig {
	if r.rest == nil {
		return dockerConfig{}
	}
	return without(r.rest.Data[corev1.DockerConfigJsonKey], auths)
}

// sumOf hashes a .dockerconfigjson value with the values have gives the keys
// of want (the labels a write sets).
func sumOf(data []byte, have, want map[string]string) [sha256.Size]byte {
	h := sha256.New()
	h.Write(data)
	for _, k := range slices.Sorted(maps.Keys(want)) {
		h.Write([]byte{0})
		h.Write([]byte(k + "=" + have[k]))
	}
	var s [sha256.Size]byte
	h.Sum(s[:0])
	return s
}

// hostsKey identifies the set of hosts of auths.
func hostsKey(auths map[string]Auth) uint64 {
	h := fnv.New64a()
	for _, k := range slices.Sorted(maps.Keys(auths)) {
		h.Write([]byte(k))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// wrap names a failed call as RBAC names it; nil stays nil. An error that
// already is a *kubeapi.Error (kubeapi's own client names its failures) is
// returned as it is.
func wrap(verb, namespace, name string, err error) error {
	var e *kubeapi.Error
	if err == nil || errors.As(err, &e) {
		return err
	}
	return &kubeapi.Error{Verb: verb, Resource: "secrets", Namespace: namespace, Name: name, Verbs: secretVerbs, Err: err}
}

// redactAuths keeps the passwords of auths, and their auth encodings, out of
// err's text: a server (or a proxy in front of it) may echo the request in
// its answer. errors.Is and errors.As still see the cause.
func redactAuths(err error, auths map[string]Auth) error {
	if err == nil {
		return nil
	}
	var secrets []string
	for _, a := range auths {
		secrets = append(secrets, a.Password, authOf(a))
	}
	return redacted{err, secrets}
}

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
