package rancher

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/projectsecret"
)

// config is the Rancher kind's settings, checked.
type config struct {
	url                  string
	api                  rancherapi.APIURL
	accessKey, secretKey string
	// projects are RANCHER_PROJECTS' ids; all is RANCHER_PROJECTS=all: every
	// scope the key can see, found again at every run.
	projects []string
	all      bool
	// inCluster is Rancher 2.x project Secrets written from inside the local
	// cluster: no CATTLE_URL, RANCHER_PROJECTS set, the ServiceAccount's token.
	inCluster  bool
	autoCreate bool
	// roots are the system roots plus RANCHER_CA_FILE's, nil without it.
	roots     *x509.CertPool
	insecure  bool
	secretAPI string // RANCHER_SECRET_API: projectsecret.ModeAuto, ModeV3 or ModeKubernetes
}

// parse reads and checks the Rancher settings, reporting every problem
// through v.
func parse(v setup.Values) config {
	c := config{
		url:        v.Get("CATTLE_URL"),
		accessKey:  v.Get("CATTLE_ACCESS_KEY"),
		secretKey:  v.Get("CATTLE_SECRET_KEY"),
		autoCreate: v.Bool("AUTO_CREATE"),
		insecure:   v.Bool("RANCHER_INSECURE_SKIP_VERIFY"),
		secretAPI:  strings.ToLower(v.Get("RANCHER_SECRET_API")),
	}
	c.inCluster = c.url == "" && v.Get("RANCHER_PROJECTS") != ""
	if c.inCluster {
		c.api.Rancher2 = true // project ids of the local cluster's Rancher
	} else {
		c.api = parseCattleURL(c.url, v.List("RANCHER_PROJECTS"), v)
		// Rancher 2.x takes a whole bearer token ("token-xxxxx:secret") as the secret key alone.
		bearer := c.api.Rancher2 && c.accessKey == "" && strings.Contains(c.secretKey, ":")
		if c.accessKey == "" && !bearer {
			v.Problem("CATTLE_ACCESS_KEY", "required (or CATTLE_ACCESS_KEY_FILE, or PLATFORM_ACCESS_KEY)")
		}
		if c.secretKey == "" {
			v.Problem("CATTLE_SECRET_KEY", "required (or CATTLE_SECRET_KEY_FILE, or PLATFORM_SECRET_KEY)")
		}
	}
	c.projects, c.all = parseProjects(v, c.api)
	checkSecretAPI(v, c)
	c.roots = readRoots(v)
	return c
}

// parseProjects reads RANCHER_PROJECTS: ids of the URL's Rancher version, or
// "all". An id listed twice is written once, with a warning.
func parseProjects(v setup.Values, api rancherapi.APIURL) (ids []string, all bool) {
	const env = "RANCHER_PROJECTS"
	list := v.List(env)
	if len(list) == 1 && strings.EqualFold(list[0], "all") {
		return nil, true
	}
	seen := map[string]bool{}
	var dups []string
	for _, p := range list {
		switch {
		case strings.EqualFold(p, "all"):
			v.Problem(env, "\"all\" must stand alone")
		case seen[p]:
			if !slices.Contains(dups, p) {
				dups = append(dups, p)
			}
		case api.Rancher2 && !rancherapi.ProjectIDPattern.MatchString(p):
			v.Problem(env, "%q is not a Rancher 2.x project id such as c-abcde:p-fghij (local:p-xxxxx for the local cluster)", p)
		case !api.Rancher2 && api.Root != nil && !environmentIDPattern.MatchString(p):
			v.Problem(env, "%q is not a Rancher 1.x environment id such as 1a5", p)
		case api.Root == nil && !api.Rancher2 && !environmentIDPattern.MatchString(p) && !rancherapi.ProjectIDPattern.MatchString(p):
			v.Problem(env, "%q is neither a Rancher 1.x environment id (1a5) nor a Rancher 2.x project id (c-abcde:p-fghij)", p)
		default:
			seen[p] = true
			ids = append(ids, p)
		}
	}
	if len(dups) > 0 {
		v.Warn("%s lists %s more than once: each is written once", env, strings.Join(dups, ", "))
	}
	if api.Rancher2 && api.Root != nil && api.Project == "" && len(list) == 0 {
		v.Problem(env, "required with a Rancher 2.x URL that names no project: list project ids (c-abcde:p-fghij) or all; or use CATTLE_URL …/v3/project/<project id>")
	}
	return ids, false
}

// checkSecretAPI validates RANCHER_SECRET_API against the URL's Rancher version.
func checkSecretAPI(v setup.Values, c config) {
	const env = "RANCHER_SECRET_API"
	switch c.secretAPI {
	case projectsecret.ModeAuto:
	case projectsecret.ModeV3, projectsecret.ModeKubernetes:
		if c.inCluster && c.secretAPI == projectsecret.ModeV3 {
			v.Problem(env, "v3 needs CATTLE_URL (https://<rancher>/v3) and an API key; without CATTLE_URL Secrets are written through the in-cluster Kubernetes API")
		}
		if !c.inCluster && c.api.Root != nil && !c.api.Rancher2 {
			v.Problem(env, "%q applies to Rancher 2.x only, but CATTLE_URL is a Rancher 1.x URL; remove it or use CATTLE_URL https://<rancher>/v3", c.secretAPI)
		}
	default:
		v.Problem(env, "%q is not auto, v3 or kubernetes", c.secretAPI)
	}
}

// readRoots reads RANCHER_CA_FILE on top of the system roots; nil without it.
func readRoots(v setup.Values) *x509.CertPool {
	const env = "RANCHER_CA_FILE"
	path := v.Get(env)
	if path == "" {
		return nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		if u := errors.Unwrap(err); u != nil {
			err = u
		}
		v.Problem(env, "cannot read %s: %v", path, err)
		return nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		v.Problem(env, "%s holds no PEM certificate", path)
		return nil
	}
	return pool
}

// scopeName is how the refresher names the scope of an environment or a
// project: its id, or "default" for the key's own unnamed environment.
func scopeName(id string) string {
	if id == "" {
		return "default"
	}
	return id
}

// String describes the configuration in a line, for tests' failure messages.
func (c config) String() string {
	return fmt.Sprintf("{url:%s rancher2:%v projects:%v all:%v inCluster:%v autoCreate:%v secretAPI:%s}",
		sanitizedURL(c.url), c.api.Rancher2, c.projects, c.all, c.inCluster, c.autoCreate, c.secretAPI)
}
