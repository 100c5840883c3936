package rancher

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/cattle"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/tenantrole"
)

// AllProjectsGroup is the group, in metrics and the readiness summary, of
// the scopes RANCHER_PROJECTS=all finds: they come and go with Rancher. A
// configured scope is its own group.
const AllProjectsGroup = "rancher-projects"

// scoper makes the scope of an environment (Rancher 1.x) or a project
// (Rancher 2.x) by id; "" is the API key's own environment.
type scoper func(id string) refresher.Scope

// apiPart writes through Rancher's API at CATTLE_URL: the URL's own scope,
// RANCHER_PROJECTS' ids, or every scope the key sees (all).
func apiPart(c config, v setup.Values, d setup.Deps) (*setup.Part, error) {
	hc := httpClient(c, d.Log)
	var (
		scope  scoper
		client *rancherapi.Client
	)
	fields := logrus.Fields{"cattle_url": c.api.Base.String()}
	if p := projectsField(c); p != "" {
		fields["rancher_projects"] = p
	}
	if c.api.Rancher2 {
		n, err := rancherapi.NewNorman(c.url, c.accessKey, c.secretKey, hc)
		if err != nil {
			v.Problem("CATTLE_URL", "%v", err)
			return nil, nil
		}
		client = n.Client
		r2, err := newRancher2(c, n, d)
		if err != nil {
			return nil, err
		}
		scope = func(id string) refresher.Scope {
			return refresher.Scope{Name: scopeName(id), Target: r2.target(n.WithProject(id))}
		}
		fields["missing_credentials"] = "created in every project, whatever AUTO_CREATE says"
	} else {
		cc, err := rancherapi.NewCattle(c.url, c.accessKey, c.secretKey, hc)
		if err != nil {
			v.Problem("CATTLE_URL", "%v", err)
			return nil, nil
		}
		client = cc.Client
		scope = func(id string) refresher.Scope {
			store := cc
			if id != "" {
				store = cc.WithProject(id)
			}
			return refresher.Scope{Name: scopeName(id), Target: &cattle.Target{Store: store, AutoCreate: c.autoCreate}}
		}
	}
	client.UserAgent = d.UserAgent
	client.Debugf = d.Log.Debugf

	p := &setup.Part{Fields: fields}
	switch {
	case c.all:
		disc := &discovery{what: "RANCHER_PROJECTS=all: the API key sees no active " + noun(c)}
		p.Discover = disc.wrap(func(ctx context.Context) ([]refresher.Scope, error) { return listScopes(ctx, client, scope, d.Log) })
		p.Empty = disc.empty
	case client.Rancher2() && (len(c.projects) > 0 || client.ProjectID() != ""):
		// Named Rancher 2.x projects: found (with the identity each names) at
		// every discovery, never written before.
		ids := c.projects
		if len(ids) == 0 {
			ids = []string{client.ProjectID()}
		}
		named := &namedProjects{ids: ids, scope: scope, log: d.Log, read: func(ctx context.Context, id string) (map[string]string, error) {
			pr, err := client.GetProject(ctx, id)
			var re *rancherapi.Error
			if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
				err = fmt.Errorf("%w; in Rancher, give the API key's user a role on project %s (Project Member, or Project Owner): a project it has no role on can be neither read nor written", err, id)
			}
			return pr.Annotations, err
		}}
		p.Discover = named.discover
	case len(c.projects) > 0:
		for _, id := range c.projects {
			p.Scopes = append(p.Scopes, scope(id))
		}
	case client.ProjectID() != "" || client.Rancher2():
		p.Scopes = []refresher.Scope{scope(client.ProjectID())}
	default:
		p.Discover = ownEnvironment(client, scope, d.Log)
	}
	return p, nil
}

// listScopes is RANCHER_PROJECTS=all: every active environment or project the
// key can see, Rancher 2.x's System project (cattle-system, kube-system)
// only when named in RANCHER_PROJECTS.
func listScopes(ctx context.Context, client *rancherapi.Client, scope scoper, log logrus.FieldLogger) ([]refresher.Scope, error) {
	projects, err := client.ListProjects(ctx)
	if err != nil {
		return nil, err
	}
	var scopes []refresher.Scope
	for _, p := range projects {
		switch {
		case p.State != "" && p.State != "active":
		case client.Rancher2() && p.System():
			log.WithField("project", p.ID).Debug("RANCHER_PROJECTS=all skips Rancher's System project; name it to write there")
		default:
			sc := scope(p.ID)
			sc.Group = AllProjectsGroup
			if client.Rancher2() {
				sc.Identity = tenantrole.IdentityOf(p.Annotations)
			}
			scopes = append(scopes, sc)
		}
	}
	return scopes, nil
}

// ownEnvironment names the scope of an unscoped Rancher 1.x URL (…/v1,
// …/v2-beta) by the environment the key belongs to, so logs, /readyz and
// metrics say "1a5", not "default": an environment key lists exactly its own
// environment. A key that sees several (an account key writes into its default
// environment, which the API does not name) or a failed listing keeps "default".
func ownEnvironment(client *rancherapi.Client, scope scoper, log logrus.FieldLogger) func(context.Context) ([]refresher.Scope, error) {
	return func(ctx context.Context) ([]refresher.Scope, error) {
		projects, err := client.ListProjects(ctx)
		if err != nil || len(projects) != 1 {
			l := log.WithField("environments", len(projects))
			if err != nil {
				l = l.WithError(err)
			}
			l.Debug("the API key's own environment is not known; its scope is named \"default\"")
			return []refresher.Scope{scope("")}, nil
		}
		return []refresher.Scope{scope(projects[0].ID)}, nil
	}
}

// discovery remembers whether the last discovery found anything, so that a
// run with no scope says why (RANCHER_PROJECTS=all, not "no scope").
type discovery struct {
	what string // the explanation when nothing was found

	mu    sync.Mutex
	ran   bool
	found int
}

func (d *discovery) wrap(f func(context.Context) ([]refresher.Scope, error)) func(context.Context) ([]refresher.Scope, error) {
	return func(ctx context.Context) ([]refresher.Scope, error) {
		scopes, err := f(ctx)
		if err == nil {
			d.mu.Lock()
			d.ran, d.found = true, len(scopes)
			d.mu.Unlock()
		}
		return scopes, err
	}
}

func (d *discovery) empty() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.ran || d.found > 0 {
		return ""
	}
	return d.what
}

// noun names what a scope is in c's Rancher.
func noun(c config) string {
	if c.api.Rancher2 {
		return "project (Rancher's System project is written only when named)"
	}
	return "environment"
}

func projectsField(c config) string {
	if c.all {
		return "all"
	}
	return strings.Join(c.projects, ",")
}

// httpClient honours RANCHER_CA_FILE and RANCHER_INSECURE_SKIP_VERIFY, and
// keeps the default transport's proxy-from-environment and keep-alives.
func httpClient(c config, log logrus.FieldLogger) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = rancherapi.DefaultMaxIdleConnsPerHost
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: c.roots}
	if c.insecure {
		log.Warn("RANCHER_INSECURE_SKIP_VERIFY is true: Rancher's TLS certificate is NOT verified; anyone on the path can read the API keys and tokens")
		tr.TLSClientConfig.InsecureSkipVerify = true
	}
	return &http.Client{Transport: tr, Timeout: rancherapi.DefaultTimeout}
}
