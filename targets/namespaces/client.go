package namespaces

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubesecret"
)

// Client is the part of the Kubernetes API the target calls. Each method
// returns a handle whose methods are named and typed as kubeapi's client
// names them: client-go's typed clients' names, and ListWatch for an
// informer.
type Client interface {
	Namespaces() NamespacesAPI
	ServiceAccounts(namespace string) ServiceAccountsAPI
	Secrets(namespace string) kubesecret.SecretsAPI
}

// NamespacesAPI lists and watches namespaces, for the informer (tweak
// narrows the list and the watch alike).
type NamespacesAPI interface {
	ListWatch(tweak func(*metav1.ListOptions)) *cache.ListWatch
}

// ServiceAccountsAPI lists and watches the named ServiceAccounts (all
// namespaces), and reads and updates one to add the Secret.
type ServiceAccountsAPI interface {
	ListWatch(tweak func(*metav1.ListOptions)) *cache.ListWatch
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
