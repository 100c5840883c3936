package namespaces_test

import (
	"context"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/namespaces"
)

// A listing the server refuses ends Start at once (not after SyncTimeout)
// with the grant that is missing, for namespaces and for the ServiceAccounts.
func TestTarget_StartRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "start-namespaces-only"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"list", "watch"}}}}
	if _, err := e.Admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "start-namespaces-only"},
		RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: role.Name},
		Subjects: []rbacv1.Subject{{Kind: "User", Name: "start-ns-reader", APIGroup: "rbac.authorization.k8s.io"}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubetest.WaitAllowed(t, e.Admin, "start-ns-reader", nil, "", "list", "", "namespaces")
	for _, c := range []struct {
		user string
		sas  []string
		want string
	}{
		{"start-nobody", nil, "cannot list namespaces cluster-wide: grant verbs [list watch] on namespaces (ClusterRole with a ClusterRoleBinding)"},
		{"start-ns-reader", []string{"default"}, "cannot list serviceaccounts cluster-wide: grant verbs [get list watch update] on serviceaccounts (ClusterRole with a ClusterRoleBinding)"},
	} {
		t.Run(c.user, func(t *testing.T) {
			cfg := kubeapi.Prepare(e.Srv.UserConfig(c.user), kubeapi.Options{UserAgent: "test"})
			kc, err := kubeapi.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			tg := namespaces.New(namespaces.API(kc), namespaces.Options{ServiceAccounts: c.sas})
			tg.Logger = e.Log
			tg.SyncTimeout = testwait.Limit
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err = tg.Start(ctx, e.Refresher())
			targettest.WantErr(t, err, c.want)
			if err != nil && strings.Contains(err.Error(), "not done within") {
				t.Error("Start waited for its timeout instead of returning the refusal")
			}
		})
	}
}
