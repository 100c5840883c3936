package main

import (
	"net/url"
	"strings"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
)

// RANCHER_SECRET_API values: how credentials reach a Rancher 2.x project.
const (
	SecretAPIAuto       = "auto"       // by server version: Kubernetes from 2.12 on, /v3 before
	SecretAPIV3         = "v3"         // /v3 dockerCredentials
	SecretAPIKubernetes = "kubernetes" // project-scoped Secrets through the Kubernetes API
	DefaultSecretAPI    = SecretAPIAuto
)

// notRancher2URL reports (and returns true) a CATTLE_URL that is not a Rancher
// 2.x API URL while a Rancher 2.x project id (c-…:p-…) is given, in
// RANCHER_PROJECTS or in the URL's own path, naming the …/v3 URL to use. A bare
// host otherwise means Rancher 1.x, whose "not an environment id" error would
// send the user the wrong way.
func notRancher2URL(raw string, api rancherapi.APIURL, parseErr error, projects []string, bad func(env, format string, args ...any)) bool {
	if parseErr == nil && api.Rancher2 {
		return false
	}
	inURL := rancherapi.Rancher2ProjectIn(raw)
	named := inURL
	for _, p := range projects {
		if named == "" && projectIDRE.MatchString(p) {
			named = p
		}
	}
	if named == "" {
		return false
	}
	where := "RANCHER_PROJECTS names " + named
	if inURL != "" {
		where = "its path names " + inURL
	}
	use := rancherapi.SuggestV3URL(raw, inURL)
	if u, err := url.Parse(strings.TrimSpace(raw)); err == nil && inURL == "" && checkURLPath(raw) != nil {
		use = u.Scheme + "://" + u.Host + "/v3" // a path without a version is a typo more often than a proxy prefix
	}
	if use == "" {
		use = "https://<rancher host>/v3"
	}
	what := "is not a Rancher 2.x API URL"
	if parseErr != nil {
		what += " (" + parseErr.Error() + ")"
	} else if api.Project == "" && strings.Trim(api.Root.Path, "/") == "v2-beta" && strings.Count(strings.TrimSpace(raw), "/") <= 3 {
		what = "is a bare host, which means Rancher 1.x"
	}
	bad("CATTLE_URL", "%s %s, but %s, a Rancher 2.x project (<cluster id>:<project id>): use CATTLE_URL=%s", sanitizedURL(raw), what, where, use)
	return true
}

// sanitizedURL is raw without userinfo, query or fragment, for messages.
func sanitizedURL(raw string) string {
	if u := rancherapi.SuggestV3URL(raw, ""); u == "" {
		return "the URL"
	}
	s := strings.TrimSpace(raw)
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		if at := strings.LastIndex(strings.SplitN(rest, "/", 2)[0], "@"); at >= 0 {
			rest = rest[at+1:]
		}
		s = scheme + "://" + rest
	}
	return s
}

// checkSecretAPI validates RANCHER_SECRET_API against the URL's Rancher version.
func checkSecretAPI(c Config, api rancherapi.APIURL, bad func(env, format string, args ...any)) {
	const env = "RANCHER_SECRET_API"
	switch c.SecretAPI {
	case SecretAPIAuto:
	case SecretAPIV3, SecretAPIKubernetes:
		if c.InCluster && c.SecretAPI == SecretAPIV3 {
			bad(env, "v3 needs CATTLE_URL (https://<rancher>/v3) and an API key; without CATTLE_URL Secrets are written through the in-cluster Kubernetes API")
		}
		if !c.InCluster && !c.Demo && api.Root != nil && !api.Rancher2 {
			bad(env, "%q applies to Rancher 2.x only, but CATTLE_URL is a Rancher 1.x URL; remove it or use CATTLE_URL https://<rancher>/v3", c.SecretAPI)
		}
	default:
		bad(env, "%q is not auto, v3 or kubernetes", c.SecretAPI)
	}
}
