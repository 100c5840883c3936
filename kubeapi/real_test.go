package kubeapi_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
)

// real returns an admin client of the shared server and creates namespaces.
func real(t *testing.T, namespaces ...string) (*kubetest.Server, *kubeapi.Client) {
	t.Helper()
	srv := server.Start(t)
	c := client(t, srv.AdminConfig())
	for _, ns := range namespaces {
		if _, err := kubetest.Clientset(t, srv.AdminConfig()).CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"test": t.Name()}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return srv, c
}

func client(t *testing.T, cfg *rest.Config) *kubeapi.Client {
	t.Helper()
	c, err := kubeapi.New(kubeapi.Prepare(cfg, kubeapi.Options{UserAgent: "kubeapi-test"}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Create, read, conditional update, patch and list a Secret; a dry run
// answers like the real call and stores nothing.
func TestClient_SecretsOnRealServer(t *testing.T) {
	t.Parallel()
	_, c := real(t, "kubeapi-secrets")
	ctx := t.Context()
	secrets := c.Secrets("kubeapi-secrets")
	want := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Labels: map[string]string{"app": "x"}},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{}}`)}}

	dry, err := c.DryRun().Secrets("kubeapi-secrets").Create(ctx, want, metav1.CreateOptions{})
	if err != nil || dry.Name != "s" || dry.Type != corev1.SecretTypeDockerConfigJson {
		t.Fatalf("dry-run create: %v %+v", err, dry)
	}
	if _, err := secrets.Get(ctx, "s", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after a dry-run create, get = %v, want 404", err)
	}
	created, err := secrets.Create(ctx, want, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Create(ctx, want, metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create = %v, want 409 AlreadyExists", err)
	}

	upd := created.DeepCopy()
	upd.Labels["app"] = "y"
	if _, err := c.DryRun().Secrets("kubeapi-secrets").Update(ctx, upd, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("dry-run update: %v", err)
	}
	if got, _ := secrets.Get(ctx, "s", metav1.GetOptions{}); got.Labels["app"] != "x" || got.ResourceVersion != created.ResourceVersion {
		t.Errorf("a dry-run update changed the Secret: %v", got.Labels)
	}
	updated, err := secrets.Update(ctx, upd, metav1.UpdateOptions{})
	if err != nil || updated.UID != created.UID || updated.Labels["app"] != "y" {
		t.Fatalf("update: %v", err)
	}
	var e *kubeapi.Error
	if _, err := secrets.Update(ctx, upd, metav1.UpdateOptions{}); !apierrors.IsConflict(err) || !errors.As(err, &e) || !e.Temporary() || e.Verb != "update" {
		t.Errorf("update with a stale resourceVersion = %v, want a temporary 409 Conflict", err)
	}

	patched, err := secrets.Patch(ctx, "s", types.MergePatchType, []byte(`{"metadata":{"annotations":{"a":"b"}}}`), metav1.PatchOptions{})
	if err != nil || patched.Annotations["a"] != "b" || patched.Labels["app"] != "y" {
		t.Fatalf("patch: %v %+v", err, patched)
	}
	applied, err := secrets.Patch(ctx, "s", types.ApplyPatchType,
		[]byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","labels":{"owner":"kubeapi"}}}`), metav1.PatchOptions{FieldManager: "kubeapi-test"})
	if err != nil || applied.Labels["owner"] != "kubeapi" {
		t.Fatalf("server-side apply: %v", err)
	}

	list, err := secrets.List(ctx, metav1.ListOptions{LabelSelector: "owner=kubeapi"})
	if err != nil || len(list.Items) != 1 || list.Items[0].Name != "s" {
		t.Fatalf("list by label: %v %d items", err, len(list.Items))
	}
}

// An informer built from the facade's List and Watch lists once and then
// follows changes, with the selector applied by the server.
func TestClient_InformerOnRealServer(t *testing.T) {
	t.Parallel()
	srv, c := real(t)
	sel := "kubeapi-informer=yes"
	inf := cache.NewSharedIndexInformer(c.Namespaces().ListWatch(func(o *metav1.ListOptions) { o.LabelSelector = sel }),
		&corev1.Namespace{}, 0, cache.Indexers{})
	var mu sync.Mutex
	var seen []string
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{AddFunc: func(obj any) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, obj.(*corev1.Namespace).Name)
	}})
	create := func(name string, labels map[string]string) {
		t.Helper()
		if _, err := kubetest.Clientset(t, srv.AdminConfig()).CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create("kubeapi-inf-before", map[string]string{"kubeapi-informer": "yes"})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go inf.RunWithContext(ctx)
	syncCtx, stop := context.WithTimeout(ctx, 30*time.Second)
	defer stop()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		t.Fatal("the informer did not sync")
	}
	create("kubeapi-inf-other", nil)
	create("kubeapi-inf-after", map[string]string{"kubeapi-informer": "yes"})
	has := func(name string) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(seen, name)
	}
	testwait.For(t, 30*time.Second, "the watch to deliver kubeapi-inf-after", func() bool { return has("kubeapi-inf-after") })
	if !has("kubeapi-inf-before") || has("kubeapi-inf-other") {
		t.Errorf("informer saw %v: want the two labelled namespaces only", seen)
	}
}

// A user without grants is refused with an error naming verb, resource,
// namespace and the grant; once granted, the same calls work.
func TestClient_RefusalNamesTheGrant(t *testing.T) {
	t.Parallel()
	srv, _ := real(t, "kubeapi-rbac")
	robot := client(t, srv.UserConfig("kubeapi-robot"))
	ctx := t.Context()
	_, err := robot.Secrets("kubeapi-rbac").Needs("get", "create", "update").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{})
	var e *kubeapi.Error
	if !errors.As(err, &e) || !apierrors.IsForbidden(err) || e.Temporary() {
		t.Fatalf("create without a grant = %v, want a permanent Forbidden *kubeapi.Error", err)
	}
	for _, want := range []string{`secrets "s" is forbidden: cannot create secrets in namespace kubeapi-rbac`,
		"grant verbs [get create update] on secrets in that namespace (Role/ClusterRole with a RoleBinding)", `User "kubeapi-robot"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	_, err = robot.Leases("kubeapi-rbac").Get(ctx, "l", metav1.GetOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "cannot get leases.coordination.k8s.io in namespace kubeapi-rbac: grant verbs [get] on leases.coordination.k8s.io in that namespace") {
		t.Errorf("lease get without a grant = %v", err)
	}
	_, err = robot.Namespaces().List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "cluster-wide") || !strings.Contains(err.Error(), "ClusterRoleBinding") {
		t.Errorf("namespace list without a grant = %v", err)
	}

	admin := kubetest.Clientset(t, srv.AdminConfig())
	if _, err := admin.RbacV1().Roles("kubeapi-rbac").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "w"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "create", "update"}}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RbacV1().RoleBindings("kubeapi-rbac").Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "w"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "w"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "kubeapi-robot"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 30*time.Second, "the grant to take effect", func() bool {
		_, err := robot.Secrets("kubeapi-rbac").Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{})
		return err == nil
	})
}

// Custom resources are read as unstructured objects: Rancher's projects
// (namespaced) and cluster repos (cluster-scoped), installed as CRDs with
// envtest.
func TestClient_CustomResourcesOnRealServer(t *testing.T) {
	t.Parallel()
	srv, c := real(t, "kubeapi-c-abcde")
	projects := schema.GroupVersionResource{Group: "management.cattle.io", Version: "v3", Resource: "projects"}
	repos := schema.GroupVersionResource{Group: "catalog.cattle.io", Version: "v1", Resource: "clusterrepos"}
	if _, err := envtest.InstallCRDs(srv.AdminConfig(), envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{
		crd(projects, "Project", apiextensionsv1.NamespaceScoped), crd(repos, "ClusterRepo", apiextensionsv1.ClusterScoped),
	}}); err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(srv.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	p := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "management.cattle.io/v3", "kind": "Project",
		"metadata": map[string]any{"name": "p-fghij", "namespace": "kubeapi-c-abcde"}, "status": map[string]any{"backingNamespace": "c-abcde-p-fghij"}}}
	if _, err := dyn.Resource(projects).Namespace("kubeapi-c-abcde").Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "catalog.cattle.io/v1", "kind": "ClusterRepo", "metadata": map[string]any{"name": "rancher-charts"}}}
	if _, err := dyn.Resource(repos).Create(ctx, r, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	got, err := c.Resource(projects).Namespace("kubeapi-c-abcde").Get(ctx, "p-fghij", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ns, _, _ := unstructured.NestedString(got.Object, "status", "backingNamespace"); ns != "c-abcde-p-fghij" {
		t.Errorf("backingNamespace %q", ns)
	}
	all, err := c.Resource(projects).List(ctx, metav1.ListOptions{})
	if err != nil || len(all.Items) != 1 || all.Items[0].GetNamespace() != "kubeapi-c-abcde" {
		t.Fatalf("projects across namespaces: %v %v", err, all)
	}
	list, err := c.Resource(repos).List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 || list.Items[0].GetName() != "rancher-charts" {
		t.Fatalf("cluster repos: %v %v", err, list)
	}
	_, err = c.Resource(projects).Namespace("kubeapi-c-abcde").Get(ctx, "p-zzzzz", metav1.GetOptions{})
	var e *kubeapi.Error
	if !apierrors.IsNotFound(err) || !errors.As(err, &e) || e.GroupResource() != "projects.management.cattle.io" || e.Temporary() {
		t.Errorf("missing project: %v", err)
	}
	robot := client(t, srv.UserConfig("kubeapi-repo-reader"))
	_, err = robot.Resource(repos).Needs("get", "list", "watch").List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "cannot list clusterrepos.catalog.cattle.io cluster-wide: grant verbs [get list watch] on clusterrepos.catalog.cattle.io (ClusterRole with a ClusterRoleBinding)") {
		t.Errorf("cluster repos without a grant: %v", err)
	}
}

func crd(gvr schema.GroupVersionResource, kind string, scope apiextensionsv1.ResourceScope) *apiextensionsv1.CustomResourceDefinition {
	preserve := true
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: gvr.Resource + "." + gvr.Group},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: gvr.Group, Scope: scope,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: gvr.Resource, Kind: kind},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: gvr.Version, Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: &preserve}}}},
		},
	}
}
