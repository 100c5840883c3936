package namespaces_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/targettest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/testwait"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/namespaces"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

const (
	roleA     = "arn:aws:iam::222222222222:role/team-a"
	roleOther = "arn:aws:iam::999999999999:role/not-listed"
	hostA     = "222222222222.dkr.ecr.us-east-1.amazonaws.com"
)

// roleSource is a tenant role's source: its account's registry, a fresh
// password per fetch.
type roleSource struct{ *targettest.Source }

func (s roleSource) Label() string { return "default registry in us-east-1 as " + roleA }

func (s roleSource) Fetch(ctx context.Context) refresher.Fetched {
	f := s.Source.Fetch(ctx)
	for i := range f.Tokens {
		f.Tokens[i].Host, f.Tokens[i].ECRHost, f.Tokens[i].RegistryID, f.Tokens[i].Identity = hostA, hostA, "222222222222", roleA
	}
	return f
}

// tenants makes r resolve roles as the daemon does: the allow list decides
// (tenantrole's refusal), an allowed role gets its own source.
func (e *env) tenants(r *refresher.Refresher, allowed ...string) {
	allow, errs := tenantrole.ParseAllowList(allowed)
	if len(errs) > 0 {
		e.T.Fatal(errs)
	}
	tenant := roleSource{e.Src}
	r.Sources = func(identity, _ string) ([]refresher.Source, error) {
		if err := allow.Check(identity); err != nil {
			return nil, err
		}
		return []refresher.Source{tenant}, nil
	}
}

// annotate sets (or, with "", removes) a namespace's role annotation.
func (e *env) annotate(name, role string) {
	e.T.Helper()
	patch := `{"metadata":{"annotations":{"` + tenantrole.Annotation + `":null}}}`
	if role != "" {
		patch = `{"metadata":{"annotations":{"` + tenantrole.Annotation + `":"` + role + `"}}}`
	}
	if _, err := e.Admin.CoreV1().Namespaces().Patch(e.T.Context(), name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		e.T.Fatal(err)
	}
}

// hosts returns the hosts a namespace's Secret holds, nil without one.
func (e *env) hosts(ns string) []string {
	s, ok := e.secret(ns, namespaces.DefaultSecretName)
	if !ok {
		return nil
	}
	var cfg struct {
		Auths map[string]json.RawMessage `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil {
		e.T.Fatal(err)
	}
	return slices.Sorted(maps.Keys(cfg.Auths))
}

// The annotation rancher-ecr-credentials/role-arn on a namespace: an allowed
// role's namespace holds that role's registry only; a role the allow list
// does not name (or no ARN at all) gets no Secret, and its scope fails
// naming the annotation, the role and AWS_ALLOWED_ROLE_ARNS. Adding,
// changing or removing the annotation rewrites the Secret within seconds
// (the refresher's loop, not the next run), with nothing of the identity
// before left in it.
func TestTarget_RoleAnnotation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"role-own": nil, "role-a": nil, "role-refused": nil, "role-garbage": nil, "role-huge": nil, "role-padded": nil})
	e.annotate("role-a", roleA)
	e.annotate("role-refused", roleOther)
	e.annotate("role-garbage", "team-a please")
	e.annotate("role-huge", strings.Repeat("x", 200_000)) // kept, logged and shown bounded
	e.annotate("role-padded", strings.Repeat(" ", 2100)+"arn:aws:iam::222222222222:role/team-b")
	r := e.Refresher()
	e.tenants(r, "arn:aws:iam::222222222222:role/team-*")
	tg := e.target(namespaces.Options{Selection: mustSelection(t, []string{"role-*"}, "", nil)})
	e.Watch(tg, r)
	err := r.RunOnce(t.Context())
	targettest.WantErr(t, err, "scope role-refused: annotation "+tenantrole.Annotation+" names role "+roleOther+", which AWS_ALLOWED_ROLE_ARNS",
		"scope role-garbage: annotation "+tenantrole.Annotation+` holds "team-a please", which is not an IAM role ARN`)
	if got := e.hosts("role-own"); !slices.Equal(got, []string{host}) {
		t.Errorf("the unannotated namespace holds %v, want the daemon's own registry", got)
	}
	if got := e.hosts("role-a"); !slices.Equal(got, []string{hostA}) {
		t.Errorf("team-a's namespace holds %v, want its role's registry only", got)
	}
	if got := e.hosts("role-padded"); !slices.Equal(got, []string{hostA}) {
		t.Errorf("the namespace naming team-b after 2,100 spaces holds %v, want that role's registry (never the daemon's own)", got)
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.HasPrefix(line, "scope role-huge: ") && (len(line) > 1000 || !strings.Contains(line, "which is not an IAM role ARN")) {
			t.Errorf("the huge annotation's refusal is %d bytes: %.200s", len(line), line)
		}
	}
	for _, ns := range []string{"role-refused", "role-garbage", "role-huge"} {
		if got := e.hosts(ns); got != nil {
			t.Errorf("%s holds a Secret with %v, want none at all", ns, got)
		}
	}
	if rd := r.Readiness(time.Now()); rd.Ready || !strings.Contains(rd.Reason, "AWS_ALLOWED_ROLE_ARNS") {
		t.Errorf("readiness %v: %s", rd.Ready, rd.Reason)
	}

	e.Run(r)
	for _, step := range []struct {
		ns, role string
		want     []string
	}{
		{"role-own", roleA, []string{hostA}}, // added: the daemon's own entry goes
		{"role-a", "", []string{host}},       // removed: the role's entry goes
		{"role-refused", roleA, []string{hostA}},
		{"role-own", "arn:aws:iam::222222222222:role/team-b", []string{hostA}}, // changed to another allowed role
		{"role-a", roleOther, []string{}},                                      // refused: the daemon's own entry taken back
	} {
		before := ""
		if s, ok := e.secret(step.ns, namespaces.DefaultSecretName); ok {
			before = s.ResourceVersion
		}
		began := time.Now()
		e.annotate(step.ns, step.role)
		testwait.For(t, 10*time.Second, step.ns+" rewritten for "+step.role, func() bool {
			s, ok := e.secret(step.ns, namespaces.DefaultSecretName)
			return ok && s.ResourceVersion != before && slices.Equal(e.hosts(step.ns), step.want)
		})
		if !targettest.HasScope(r, step.ns) {
			t.Errorf("%s: the scope is gone", step.ns)
		}
		t.Logf("%s annotated %q: secret rewritten %s later", step.ns, step.role, time.Since(began).Round(time.Millisecond))
	}
}

// Planned with no token (its identity refused), a namespace's write takes
// every entry of a host this daemon manages out of its Secret, keeps the
// others', and creates no Secret where there is none; a Secret that is not
// this daemon's is left as it is.
func TestTarget_RefusedIdentityTakesBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.namespaces(map[string]map[string]string{"takeback-had": nil, "takeback-none": nil, "takeback-foreign": nil})
	tg := e.target(namespaces.Options{Selection: mustSelection(t, []string{"takeback-*"}, "", nil)})
	e.Watch(tg, e.Refresher())
	if _, err := e.plan(tg, "takeback-had", onlyHost).Writes[0].Apply(t.Context()); err != nil {
		t.Fatal(err)
	}
	s, _ := e.secret("takeback-had", namespaces.DefaultSecretName)
	s.Data[corev1.DockerConfigJsonKey] = []byte(strings.Replace(string(s.Data[corev1.DockerConfigJsonKey]), `{"auths":{`, `{"auths":{"mirror.example.com":{"auth":"dTpw"},`, 1))
	if _, err := e.Admin.CoreV1().Secrets("takeback-had").Update(t.Context(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	foreign := e.Create(foreignSecret("takeback-foreign", `{"auths":{"`+host+`":{"auth":"eDp5"}}}`))

	for _, ns := range []string{"takeback-had", "takeback-none", "takeback-foreign"} {
		p, err := tg.Scope(ns).Target.Plan(t.Context(), refresher.Input{Managed: onlyHost, Log: e.Log, TakeBack: true})
		if err != nil || len(p.Writes) != 1 || len(p.Writes[0].Tokens) != 0 {
			t.Fatalf("%s: plan %+v, %v; want one write holding no token", ns, p, err)
		}
		if res, err := p.Writes[0].Check(t.Context()); err != nil {
			t.Errorf("%s: Check = %s, %v", ns, res, err)
		}
		if _, err := p.Writes[0].Apply(t.Context()); err != nil {
			t.Errorf("%s: Apply: %v", ns, err)
		}
	}
	if got := e.hosts("takeback-had"); !slices.Equal(got, []string{"mirror.example.com"}) {
		t.Errorf("after the refusal the Secret holds %v, want only the entry that is not this daemon's", got)
	}
	if got := e.hosts("takeback-none"); got != nil {
		t.Errorf("a Secret was created holding %v", got)
	}
	if after, _ := e.secret("takeback-foreign", namespaces.DefaultSecretName); after.ResourceVersion != foreign.ResourceVersion {
		t.Error("a Secret that is not this daemon's was changed")
	}
}
