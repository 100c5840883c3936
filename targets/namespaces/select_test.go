package namespaces_test

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/namespaces"
)

func TestSelection_Selects(t *testing.T) {
	t.Parallel()
	ns := func(name string, labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	}
	terminating := ns("team-gone", nil)
	terminating.Status.Phase = corev1.NamespaceTerminating
	deleting := ns("team-deleting", nil)
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	all, _ := namespaces.ParseSelection([]string{"all"}, "", namespaces.DefaultExclude)
	teams, _ := namespaces.ParseSelection([]string{"team-*", "web"}, "", []string{"team-skip"})
	labelled, _ := namespaces.ParseSelection(nil, "ecr in (yes,true),tier!=sandbox", nil)
	for _, c := range []struct {
		sel  namespaces.Selection
		ns   *corev1.Namespace
		want bool
	}{
		{all, ns("default", nil), true},
		{all, ns("kube-system", nil), false},
		{all, terminating, false},
		{all, deleting, false},
		{teams, ns("team-a", nil), true},
		{teams, ns("web", nil), true},
		{teams, ns("team-skip", nil), false},
		{teams, ns("webapp", nil), false},
		{labelled, ns("x", map[string]string{"ecr": "yes"}), true},
		{labelled, ns("x", map[string]string{"ecr": "yes", "tier": "sandbox"}), false},
		{labelled, ns("x", nil), false},
	} {
		if got := c.sel.Selects(c.ns); got != c.want {
			t.Errorf("%+v selects %s (%v) = %v, want %v", c.sel, c.ns.Name, c.ns.Labels, got, c.want)
		}
	}
}

func TestParseSelection_Errors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		include, exclude []string
		selector, want   string
	}{
		{[]string{"all", "x"}, nil, "", `KUBE_NAMESPACES: "all" must stand alone`},
		{[]string{"team-["}, nil, "", `KUBE_NAMESPACES: "team-[" is not a name or glob`},
		{nil, []string{"["}, "", `KUBE_EXCLUDE_NAMESPACES: "[" is not a name or glob`},
		{nil, nil, "a in (", `KUBE_NAMESPACE_SELECTOR: "a in (" is not a label selector`},
	} {
		_, err := namespaces.ParseSelection(c.include, c.selector, c.exclude)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("ParseSelection(%v, %q, %v) = %v, want %s…", c.include, c.selector, c.exclude, err, c.want)
		}
	}
}

// String names the settings, as Empty's message and the start line show them.
func TestSelection_String(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		include, exclude []string
		selector, want   string
	}{
		{[]string{"all"}, nil, "", `KUBE_NAMESPACES "all"`},
		{[]string{"team-*", "web"}, namespaces.DefaultExclude, "", `KUBE_NAMESPACES "team-*,web" (KUBE_EXCLUDE_NAMESPACES "kube-system,kube-public,kube-node-lease")`},
		{nil, nil, "team=a", `KUBE_NAMESPACE_SELECTOR "team=a"`},
		{[]string{"team-*"}, []string{"team-x"}, "ecr in (yes)", `KUBE_NAMESPACES "team-*" with KUBE_NAMESPACE_SELECTOR "ecr in (yes)" (KUBE_EXCLUDE_NAMESPACES "team-x")`},
	} {
		s := mustSelection(t, c.include, c.selector, c.exclude)
		if got := s.String(); got != c.want {
			t.Errorf("String() = %s, want %s", got, c.want)
		}
	}
}
