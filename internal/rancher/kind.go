// Package rancher is the Rancher kind of target, as the daemon's table of kinds
// registers it: the settings of the Rancher 1.x and Rancher 2.x modes, their
// checks, and the part that writes registry credentials into Rancher 1.x
// environments (targets/cattle) and Rancher 2.x projects (targets/norman over
// /v3, targets/projectsecret from Rancher 2.12 on). See docs/rancher-api.md and
// docs/rancher-2.12.md.
package rancher

import (
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/setup"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/projectsecret"
)

// Kind is Rancher: on when CATTLE_URL (or PLATFORM_URL) is given, or
// RANCHER_PROJECTS alone (Rancher 2.x project Secrets from inside its local
// cluster).
func Kind() setup.Kind {
	return setup.Kind{
		Section: rancher1Section(),
		More:    []setup.Section{rancher2Section()},
		On:      func(v setup.Values) bool { return v.IsSet("CATTLE_URL") || v.IsSet("RANCHER_PROJECTS") },
		Build:   build,
	}
}

// rancher1Section is the Rancher settings, as Rancher 1.x uses them.
func rancher1Section() setup.Section {
	return setup.Section{
		Title: "Rancher 1.x: registry credentials in Rancher 1.x environments",
		Requires: "CATTLE_URL (https://<rancher>, …/v1 or …/v2-beta, optionally …/projects/<environment id>) with CATTLE_ACCESS_KEY and " +
			"CATTLE_SECRET_KEY, an environment or account API key; Rancher's agent labels inject all three",
		Settings: []setup.Setting{
			{Env: "CATTLE_URL", Alias: "PLATFORM_URL", DefaultHelp: "required", Usage: "Rancher API URL (forms below)"},
			{Env: "CATTLE_ACCESS_KEY", Alias: "PLATFORM_ACCESS_KEY", DefaultHelp: "required", File: true,
				Usage: "Rancher API access key (leave empty on Rancher 2.x when CATTLE_SECRET_KEY is a whole token-xxxxx:yyyy bearer token)"},
			{Env: "CATTLE_SECRET_KEY", Alias: "PLATFORM_SECRET_KEY", DefaultHelp: "required", File: true, Secret: true,
				Usage: "Rancher API secret key, or on Rancher 2.x a bearer token token-xxxxx:yyyy"},
			{Env: "AUTO_CREATE", Default: "false", Bool: true, Usage: "Rancher 1.x: create the registry when none matches the ECR host (Rancher 2.x always creates a missing credential)"},
			{Env: "RANCHER_PROJECTS", DefaultHelp: "the URL's own scope", Usage: "comma list of Rancher 1.x environment ids (1a5) or Rancher 2.x project ids " +
				"(c-abcde:p-fghij) to write into, or all (every one the key can see, found again at every run; Rancher 2.x's System project only when named)"},
			{Env: "RANCHER_CA_FILE", Usage: "PEM bundle trusted for Rancher's TLS, on top of the system roots"},
			{Env: "RANCHER_INSECURE_SKIP_VERIFY", Default: "false", Bool: true, Usage: "do not verify Rancher's TLS certificate (unsafe)"},
		},
		Notes: []string{
			"CATTLE_URL forms:",
			"  Rancher 1.x  https://rancher.example.com            (the same as …/v2-beta)",
			"               https://rancher.example.com/v1, …/v2-beta",
			"               https://rancher.example.com/v2-beta/projects/1a5   (one environment; also …/v1/projects/1a5)",
			"  Rancher 2.x  https://rancher.example.com/v3         (with RANCHER_PROJECTS)",
			"               https://rancher.example.com/v3/project/c-abcde:p-fghij   (one project)",
			"  A path before the version (a proxy prefix) is kept: https://proxy.example.com/rancher/v2-beta.",
			"PLATFORM_URL, PLATFORM_ACCESS_KEY, PLATFORM_SECRET_KEY (the Rancher 1.6 fork's names) are read when the CATTLE_* name is unset.",
		},
	}
}

// rancher2Section is what Rancher 2.x adds.
func rancher2Section() setup.Section {
	return setup.Section{
		Title: "Rancher 2.x: dockerCredentials (/v3) or, from Rancher 2.12 on, project-scoped Secrets in Rancher 2.x projects",
		Requires: "CATTLE_URL https://<rancher>/v3 with RANCHER_PROJECTS (or …/v3/project/<cluster id>:<project id>) and an API token: " +
			"CATTLE_ACCESS_KEY unset, CATTLE_SECRET_KEY=token-xxxxx:yyyyyyyy (or the key pair); inside Rancher's local cluster, " +
			"RANCHER_PROJECTS alone, written as the Pod's ServiceAccount",
		Settings: []setup.Setting{
			{Env: "RANCHER_SECRET_API", Default: projectsecret.ModeAuto, Usage: "auto (Kubernetes Secrets from Rancher 2.12 on, /v3 dockerCredentials before), v3 or kubernetes"},
		},
		Notes: []string{
			"CATTLE_URL, the keys and their _FILE forms, RANCHER_PROJECTS, RANCHER_CA_FILE and RANCHER_INSECURE_SKIP_VERIFY above serve Rancher 2.x too.",
			"Rancher 2.x writes a dockerCredential into every project that lacks one for an ECR host, whatever AUTO_CREATE",
			"says (AUTO_CREATE decides only whether Rancher 1.x registries are created).",
		},
	}
}

// build checks the settings and builds the part; nothing here touches the network.
func build(v setup.Values, d setup.Deps) (*setup.Part, error) {
	c := parse(v)
	if c.inCluster {
		return inClusterPart(c, d)
	}
	if c.api.Root == nil {
		return nil, nil // CATTLE_URL is unusable: its problem is reported
	}
	return apiPart(c, v, d)
}
