package namespaces

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
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

// API adapts kubeapi's client.
func API(c *kubeapi.Client) Client { return api{c} }

type api struct{ c *kubeapi.Client }

func (a api) Namespaces() NamespacesAPI { return a.c.Namespaces().Needs("list", "watch") }
func (a api) ServiceAccounts(ns string) ServiceAccountsAPI {
	return a.c.ServiceAccounts(ns).Needs("get", "list", "watch", "update")
}
func (a api) Secrets(ns string) kubesecret.SecretsAPI {
	return a.c.Secrets(ns).Needs("get", "create", "update")
}
