package namespaces_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/namespaces"
)

// values is setup.Values over a map, with the Kind's defaults.
type values struct {
	env      map[string]string
	problems []string
}

func newValues(env map[string]string) *values {
	v := &values{env: map[string]string{}}
	for _, s := range namespaces.Kind().Section.Settings {
		if s.Default != "" {
			v.env[s.Env] = s.Default
		}
	}
	for k, val := range env {
		v.env[k] = val
	}
	return v
}

func (v *values) Get(env string) string         { return strings.TrimSpace(v.env[env]) }
func (v *values) IsSet(env string) bool         { _, ok := v.env[env]; return ok }
func (v *values) Warn(string, ...any)           {}
func (v *values) Duration(string) time.Duration { return 0 }

func (v *values) Bool(env string) bool {
	b, err := strconv.ParseBool(v.Get(env))
	if err != nil && v.Get(env) != "" {
		v.Problem(env, "%q is not true or false", v.Get(env))
	}
	return b
}

func (v *values) List(env string) []string {
	var out []string
	for _, s := range strings.Split(v.env[env], ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func (v *values) Problem(env, format string, args ...any) {
	v.problems = append(v.problems, env+": "+fmt.Sprintf(format, args...))
}

func TestKind_Section(t *testing.T) {
	t.Parallel()
	k := namespaces.Kind()
	if k.Section.Title != "Kubernetes namespaces" || k.Section.Requires == "" {
		t.Errorf("section %q requires %q", k.Section.Title, k.Section.Requires)
	}
	defaults := map[string]string{}
	var envs []string
	for _, s := range k.Section.Settings {
		if s.Usage == "" {
			t.Errorf("%s has no usage", s.Env)
		}
		envs = append(envs, s.Env)
		defaults[s.Env] = s.Default
	}
	want := []string{"KUBE_NAMESPACES", "KUBE_NAMESPACE_SELECTOR", "KUBE_EXCLUDE_NAMESPACES", "KUBE_SECRET_NAME", "KUBE_SERVICE_ACCOUNTS", "KUBE_ADOPT_SECRETS"}
	if !slices.Equal(envs, want) {
		t.Errorf("settings %v, want %v", envs, want)
	}
	// CONTRACT.md's defaults.
	if defaults["KUBE_EXCLUDE_NAMESPACES"] != "kube-system,kube-public,kube-node-lease" || defaults["KUBE_SECRET_NAME"] != "ecr-credentials" || defaults["KUBE_ADOPT_SECRETS"] != "false" {
		t.Errorf("defaults %v", defaults)
	}
}

func TestKind_OnAndProblems(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		env  map[string]string
		on   bool
		want []string
	}{
		{"Off", map[string]string{"KUBE_SECRET_NAME": "x"}, false, nil},
		{"All", map[string]string{"KUBE_NAMESPACES": "all"}, true, nil},
		{"SelectorAlone", map[string]string{"KUBE_NAMESPACE_SELECTOR": "team=a"}, true, nil},
		{"ServiceAccountsAlone", map[string]string{"KUBE_SERVICE_ACCOUNTS": "default"}, true,
			[]string{"KUBE_SERVICE_ACCOUNTS: set, but no namespace is selected: set KUBE_NAMESPACES or KUBE_NAMESPACE_SELECTOR too"}},
		{"Bad", map[string]string{"KUBE_NAMESPACES": "all,team-[", "KUBE_NAMESPACE_SELECTOR": "a in (", "KUBE_EXCLUDE_NAMESPACES": "[",
			"KUBE_SECRET_NAME": "Bad_Name", "KUBE_SERVICE_ACCOUNTS": "default,No!", "KUBE_ADOPT_SECRETS": "maybe"}, true, []string{
			`KUBE_NAMESPACES: "all" must stand alone`,
			`KUBE_NAMESPACES: "team-[" is not a name or glob: syntax error in pattern`,
			`KUBE_EXCLUDE_NAMESPACES: "[" is not a name or glob: syntax error in pattern`,
			`KUBE_NAMESPACE_SELECTOR: "a in (" is not a label selector`,
			`KUBE_ADOPT_SECRETS: "maybe" is not true or false`,
			`KUBE_SECRET_NAME: "Bad_Name" is not a Secret name`,
			`KUBE_SERVICE_ACCOUNTS: "No!" is not a ServiceAccount name`,
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newValues(c.env)
			k := namespaces.Kind()
			if got := k.On(v); got != c.on {
				t.Fatalf("On = %v, want %v", got, c.on)
			}
			if !c.on {
				return
			}
			kubernetes := func() (*rest.Config, string, error) { return &rest.Config{Host: "https://127.0.0.1:1"}, "", nil }
			part, err := k.Build(v, setup.Deps{Kubernetes: kubernetes})
			if err != nil {
				t.Fatal(err)
			}
			if len(v.problems) != len(c.want) {
				t.Fatalf("problems %q, want %q", v.problems, c.want)
			}
			for i, w := range c.want {
				if !strings.HasPrefix(v.problems[i], w) {
					t.Errorf("problem %q, want %q…", v.problems[i], w)
				}
			}
			if (part == nil) != (len(c.want) > 0) {
				t.Errorf("part %v with problems %q", part, v.problems)
			}
		})
	}
}

// Build wires what the daemon runs: the Part started into a refresher pushes
// the selected namespaces (named after the namespace alone, or with the kind's
// prefix beside a Rancher target), writes them, and says why it has none.
func TestKind_Build(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"kind-a": {"team": "a"}, "kind-b": nil})
	kubernetes := func() (*rest.Config, string, error) {
		return kubeapi.Prepare(e.Srv.AdminConfig(), kubeapi.Options{UserAgent: "test"}), "", nil
	}
	for _, c := range []struct {
		name string
		env  map[string]string
		want []string
		lead bool
	}{
		{"Alone", map[string]string{"KUBE_NAMESPACES": "kind-*", "KUBE_NAMESPACE_SELECTOR": "team=a"}, []string{"kind-a"}, false},
		{"BesideRancher", map[string]string{"KUBE_NAMESPACES": "kind-*", "KUBE_SERVICE_ACCOUNTS": "default", "CATTLE_URL": "https://rancher.invalid/v3"},
			[]string{"namespace/kind-a", "namespace/kind-b"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newValues(c.env)
			part, err := namespaces.Kind().Build(v, setup.Deps{Log: e.Log, Kubernetes: kubernetes})
			if err != nil || part == nil || len(v.problems) > 0 {
				t.Fatalf("Build = %v, %v; problems %q", part, err, v.problems)
			}
			if part.Start == nil || part.Empty == nil || (part.Lead != nil) != c.lead || part.Fields["kube_secret_name"] != "ecr-credentials" || part.Fields["kube_namespaces"] != "kind-*" {
				t.Errorf("part: start %v empty %v lead %v fields %v", part.Start != nil, part.Empty != nil, part.Lead != nil, part.Fields)
			}
			r := e.Refresher()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := part.Start(ctx, r); err != nil {
				t.Fatal(err)
			}
			if got := r.Scopes(); !slices.Equal(got, c.want) {
				t.Errorf("scopes %v, want %v", got, c.want)
			}
			if err := r.RunOnce(t.Context()); err != nil {
				t.Fatal(err)
			}
			if got := part.Empty(); got != "" {
				t.Errorf("Empty() = %q", got)
			}
		})
	}
	v := newValues(map[string]string{"KUBE_NAMESPACE_SELECTOR": "team=nobody"})
	part, err := namespaces.Kind().Build(v, setup.Deps{Log: e.Log, Kubernetes: kubernetes})
	if err != nil || part == nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := part.Start(ctx, e.Refresher()); err != nil {
		t.Fatal(err)
	}
	if got, want := part.Empty(), `no namespace matches KUBE_NAMESPACE_SELECTOR "team=nobody" (KUBE_EXCLUDE_NAMESPACES "kube-system,kube-public,kube-node-lease")`; !strings.HasPrefix(got, want) {
		t.Errorf("Empty() = %q, want %q…", got, want)
	}
}
