package consumer_test

import (
	"context"
	"slices"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/consumer"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

func TestNamespaces(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		list      []string
		names     []string
		selects   []string
		leavesOut []string
	}{
		{list: nil, selects: []string{"argocd", "x"}},
		{list: []string{"all"}, selects: []string{"argocd"}},
		{list: []string{"argocd", "cattle-system"}, names: []string{"argocd", "cattle-system"}, selects: []string{"argocd"}, leavesOut: []string{"argo", "default"}},
		{list: []string{"team-*", "argocd"}, selects: []string{"team-a", "argocd"}, leavesOut: []string{"teams"}},
	} {
		n, err := consumer.ParseNamespaces(tt.list)
		if err != nil {
			t.Fatalf("%v: %v", tt.list, err)
		}
		if got := n.Names(); !slices.Equal(got, tt.names) {
			t.Errorf("%v: Names() = %v, want %v", tt.list, got, tt.names)
		}
		for _, ns := range tt.selects {
			if !n.Selects(ns) {
				t.Errorf("%v does not select %s", tt.list, ns)
			}
		}
		for _, ns := range tt.leavesOut {
			if n.Selects(ns) {
				t.Errorf("%v selects %s", tt.list, ns)
			}
		}
	}
	for _, bad := range [][]string{{"all", "argocd"}, {"team-[a"}} {
		if _, err := consumer.ParseNamespaces(bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestHostOf(t *testing.T) {
	t.Parallel()
	const ecr = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	for url, want := range map[string]string{
		"oci://" + ecr + "/charts":         ecr,
		"https://" + ecr:                   ecr,
		ecr + "/team/charts":               ecr,
		"OCI://" + ecr + "/x":              ecr,
		"public.ecr.aws/abc123/charts":     "public.ecr.aws",
		"oci://registry:5000/charts":       "registry:5000",
		"https://user@git.example.com/x":   "git.example.com",
		"git@github.com:argoproj/repo.git": "",
		"":                                 "",
	} {
		got, ok := consumer.HostOf(url)
		if got != want || ok != (want != "") {
			t.Errorf("HostOf(%q) = %q, %v; want %q", url, got, ok, want)
		}
	}
	for host, want := range map[string]bool{
		"111122223333.dkr.ecr.us-east-1.amazonaws.com": true, "public.ecr.aws": true, "registry:5000": true,
		"github.com": false, "charts.example.com": false, "111122223333.dkr.ecr.us-east-1.example.com": false,
	} {
		if got := consumer.ECRLike(host, "registry:5000"); got != want {
			t.Errorf("ECRLike(%q) = %v", host, got)
		}
	}
}

// nothing is a Target that plans nothing.
type nothing struct{}

func (nothing) Plan(context.Context, refresher.Input) (refresher.Plan, error) {
	return refresher.Plan{}, nil
}

// A scope of a registry not managed is a scope only until a plan tells:
// then it is parked (out of the refresher, one line), never added again
// while its registry is not managed, and put back once it is.
func TestScopes_ParksUnmanaged(t *testing.T) {
	t.Parallel()
	r := refresher.New(nil, nil)
	log, hook := test.NewNullLogger()
	s := consumer.NewScopes(r, log)
	sc := refresher.Scope{Name: "argocd/a/repo", Group: "argocd", Target: nothing{}}
	managed := map[string]bool{}
	in := refresher.Input{Managed: func(h string) bool { return managed[h] }}

	s.Put(sc, "other.example.com", true, false) // before any plan: a scope
	if !slices.Contains(r.Scopes(), sc.Name) || s.Len() != 1 {
		t.Fatalf("scopes %v before the first plan", r.Scopes())
	}
	if s.Managed(in, sc.Name, "other.example.com") {
		t.Fatal("an unmanaged registry is managed")
	}
	if slices.Contains(r.Scopes(), sc.Name) || s.Len() != 0 || !s.Unmanaged("other.example.com") {
		t.Fatalf("not parked: scopes %v", r.Scopes())
	}
	s.Put(sc, "other.example.com", true, true) // a change, or a resync: still not managed
	if slices.Contains(r.Scopes(), sc.Name) || len(hook.AllEntries()) != 1 || hook.LastEntry().Level != logrus.InfoLevel {
		t.Fatalf("scopes %v, %d lines", r.Scopes(), len(hook.AllEntries()))
	}
	managed["other.example.com"] = true // its source fetched late
	s.Put(sc, "other.example.com", true, false)
	if !slices.Contains(r.Scopes(), sc.Name) || s.Len() != 1 {
		t.Fatalf("not put back once managed: %v", r.Scopes())
	}
	s.Drop(sc.Name)
	if len(r.Scopes()) != 0 || s.Len() != 0 {
		t.Fatalf("Drop left %v", r.Scopes())
	}
}
