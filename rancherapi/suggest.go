package rancherapi

import (
	"net/url"
	"regexp"
	"strings"
)

// ProjectIDPattern matches a Rancher 2.x project id, <cluster id>:<project id>
// (the local cluster's id is "local").
var ProjectIDPattern = regexp.MustCompile(`^(local|c-[a-z0-9]+|c-m-[a-z0-9]+):p-[a-z0-9]+$`)

// Rancher2ProjectIn returns the first path segment of raw that is a Rancher
// 2.x project id, or "".
func Rancher2ProjectIn(raw string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return ""
	}
	for _, s := range strings.Split(u.Path, "/") {
		if ProjectIDPattern.MatchString(s) {
			return s
		}
	}
	return ""
}

// SuggestV3URL returns the Rancher 2.x API URL a user most likely meant by raw
// (a bare host, a Rancher 1.x path, the UI, a kubeconfig's /k8s/clusters/… URL):
// scheme, host and any path prefix in front of what is not Rancher's API, then
// /v3, then /project/<project> when project is set. It returns "" when raw has
// no scheme and host to build on.
func SuggestV3URL(raw, project string) string {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	var prefix []string
	for _, s := range strings.Split(u.Path, "/") {
		if s == "" {
			continue
		}
		switch strings.ToLower(s) {
		case "v1", "v2-beta", "v3", "v3-public", "k8s", "api", "apis", "dashboard", "g", "c", "login", "project", "projects", "p":
			return v3URL(u, prefix, project)
		}
		if strings.Contains(s, ":") {
			return v3URL(u, prefix, project)
		}
		prefix = append(prefix, s)
	}
	return v3URL(u, prefix, project)
}

func v3URL(u *url.URL, prefix []string, project string) string {
	out := url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/" + strings.Join(append(prefix, "v3"), "/")}
	if project != "" {
		out.Path += "/project/" + project
	}
	return out.String()
}
