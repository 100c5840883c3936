package consumer

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

const (
	// DefaultSyncTimeout bounds how long a Start waits for the first listing.
	DefaultSyncTimeout = 30 * time.Second
	// Resync is how often a watch hands every object it holds to its handler
	// again: a consumer left alone because its registry was not managed then
	// is taken up once it is (a source fetched late).
	Resync = 5 * time.Minute
)

// Keep is what a Secret watch keeps of each Secret besides its name,
// namespace, resourceVersion, type and labels: the data keys and annotations
// a target reads. Nothing else — no password — stays in memory.
type Keep struct {
	Data        []string
	Annotations []string
}

// SecretInformers returns informers of the Secrets that selector (a label
// selector the server applies) matches in the namespaces ns selects: one per
// namespace when ns names them, else one over every namespace (the handler
// drops what ns does not select). listWatch returns the list and watch of one
// namespace's Secrets ("" every namespace's) with the selector applied.
func SecretInformers(ns Namespaces, listWatch func(namespace string) cache.ListerWatcher, keep Keep) []cache.SharedIndexInformer {
	names := ns.Names()
	if names == nil {
		names = []string{metav1.NamespaceAll}
	}
	infs := make([]cache.SharedIndexInformer, 0, len(names))
	for _, n := range names {
		inf := cache.NewSharedIndexInformer(listWatch(n), &corev1.Secret{}, Resync, cache.Indexers{})
		_ = inf.SetTransform(keep.slim)
		infs = append(infs, inf)
	}
	return infs
}

// slim keeps of a Secret what Keep says.
func (k Keep) slim(obj any) (any, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return obj, nil
	}
	out := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace, ResourceVersion: s.ResourceVersion,
		Labels: s.Labels, DeletionTimestamp: s.DeletionTimestamp}, Type: s.Type}
	for _, a := range k.Annotations {
		if v, ok := s.Annotations[a]; ok {
			if out.Annotations == nil {
				out.Annotations = map[string]string{}
			}
			out.Annotations[a] = v
		}
	}
	for _, d := range k.Data {
		if v, ok := s.Data[d]; ok {
			if out.Data == nil {
				out.Data = map[string][]byte{}
			}
			out.Data[d] = v
		}
	}
	return out, nil
}

// AsSecret is the Secret of an informer event (a deletion's last known state
// included), or nil.
func AsSecret(obj any) *corev1.Secret {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	s, _ := obj.(*corev1.Secret)
	return s
}
