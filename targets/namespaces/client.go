package namespaces

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
)

// Client is the part of the Kubernetes API the target calls. Each method
// returns a handle whose methods are named and typed as client-go's typed
// clients name them, and as kubeapi's client does, so either serves through a
// three-line adapter (CoreV1 for client-go's).
type Client interface {
	Namespaces() NamespacesAPI
	ServiceAccounts(namespace string) ServiceAccountsAPI
	Secrets(namespace string) kubesecret.SecretsAPI
}

// NamespacesAPI lists and watches namespaces, for the informer.
type NamespacesAPI interface {
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.NamespaceList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
}

// ServiceAccountsAPI lists and watches the named ServiceAccounts (all
// namespaces), and reads and updates one to add the Secret.
type ServiceAccountsAPI interface {
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.ServiceAccountList, error)
	Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.ServiceAccount, error)
	Update(ctx context.Context, sa *corev1.ServiceAccount, opts metav1.UpdateOptions) (*corev1.ServiceAccount, error)
}

// CoreV1 adapts client-go's typed core/v1 client.
func CoreV1(c corev1client.CoreV1Interface) Client { return coreV1{c} }

type coreV1 struct{ c corev1client.CoreV1Interface }

func (c coreV1) Namespaces() NamespacesAPI { return c.c.Namespaces() }
func (c coreV1) ServiceAccounts(ns string) ServiceAccountsAPI {
	return c.c.ServiceAccounts(ns)
}
func (c coreV1) Secrets(ns string) kubesecret.SecretsAPI { return c.c.Secrets(ns) }
