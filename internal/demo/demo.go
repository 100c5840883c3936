// Package demo is --demo: local stand-ins of ECR and Rancher (the ones the
// tests use), the settings that point the daemon at them, and the narration
// that says what a newcomer is looking at.
package demo

import (
	"fmt"
	"io"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
)

// Demo stand-in identities. They are not secrets: they only open the stand-ins.
const (
	demoProject    = "1a5"
	demoAccess     = "demo-access-key"
	demoSecret     = "demo-secret-key"
	demoRegion     = "us-east-1"
	demoAccount    = "111122223333" // has a registry in Rancher already
	demoNewAccount = "444455556666" // has none: AUTO_CREATE makes it
)

// StandIns are the local ECR and Rancher that --demo runs against: the same
// stand-ins the tests use.
type StandIns struct {
	ecr      *ecrtest.Server
	rancher  *ranchertest.Server
	ecrSrv   *httptest.Server
	rSrv     *httptest.Server
	rancher2 bool
}

// Rancher 2.x demo projects.
const (
	demoProject2a = "c-demo1:p-web"
	demoProject2b = "c-demo1:p-batch"
)

// Start serves the stand-ins on 127.0.0.1, seeded with what an operator's
// Rancher 1.x environment (or, with rancher2, Rancher 2.x projects) typically
// holds, and says so on out.
func Start(out io.Writer, rancher2 bool) *StandIns {
	d := &StandIns{ecr: ecrtest.New(demoAccount, demoRegion), rancher2: rancher2}
	if rancher2 {
		d.rancher = ranchertest.New(ranchertest.Key{Access: demoAccess, Secret: demoSecret, Projects: []string{"*"}})
		// A hand-kept credential that mixes hosts (never rewritten), and a stale one of ours.
		d.rancher.AddProject(demoProject2a)
		d.rancher.AddProject(demoProject2b)
		d.rancher.AddDockerCredential(demoProject2a, "hub-and-ecr", map[string]ranchertest.Auth{
			"index.docker.io": {Username: "someone", Password: "hand-kept-password"}, d.ecr.Host(demoAccount): {Username: "AWS", Password: "expired-ecr-token"}})
		d.rancher.AddDockerCredential(demoProject2b, "ecr-"+demoAccount+"-"+demoRegion,
			map[string]ranchertest.Auth{d.ecr.Host(demoAccount): {Username: "AWS", Password: "expired-ecr-token"}})
	} else {
		d.rancher = ranchertest.New(ranchertest.Key{Access: demoAccess, Secret: demoSecret, Project: demoProject})
		// What an operator's environment typically holds: a Docker Hub registry kept
		// by hand, the ECR registry with a stale credential, and an odd address.
		hub := d.rancher.AddRegistry(demoProject, "index.docker.io", "")
		d.rancher.AddCredential(demoProject, hub, "someone", "hand-kept-password", "")
		ecrReg := d.rancher.AddRegistry(demoProject, d.ecr.Host(demoAccount), "")
		d.rancher.AddCredential(demoProject, ecrReg, "AWS", "expired-ecr-token", "")
		d.rancher.AddRegistry(demoProject, "http://[bad address", "")
	}

	d.ecrSrv = httptest.NewServer(d.ecr)
	d.rSrv = httptest.NewServer(d.rancher)
	d.explain(out)
	if rancher2 {
		fmt.Fprintf(out, "demo: stand-in Rancher 2.x API at %s/v3 (projects %s and %s; access key %s, secret key %s)\n",
			d.rSrv.URL, demoProject2a, demoProject2b, demoAccess, demoSecret)
		fmt.Fprintf(out, "demo: try: curl -su %s:%s %s/v3/project/%s/dockercredentials\n", demoAccess, demoSecret, d.rSrv.URL, demoProject2a)
	} else {
		fmt.Fprintf(out, "demo: stand-in Rancher 1.x API at %s/v2-beta/projects/%s (access key %s, secret key %s)\n",
			d.rSrv.URL, demoProject, demoAccess, demoSecret)
		fmt.Fprintf(out, "demo: try: curl -su %s:%s %s/v2-beta/projects/%s/registrycredentials\n", demoAccess, demoSecret, d.rSrv.URL, demoProject)
	}
	fmt.Fprintf(out, "demo: stand-in ECR API at %s (registries %s and %s in %s)\n", d.ecrSrv.URL, demoAccount, demoNewAccount, demoRegion)
	return d
}

// Settings point the daemon at the stand-ins: they win over the caller's
// flags and environment. Everything else (LISTEN_*, LOG_*, --once) is the
// caller's.
func (d *StandIns) Settings() map[string]string {
	s := map[string]string{
		"CATTLE_URL": d.rSrv.URL + "/v2-beta/projects/" + demoProject, "RANCHER_PROJECTS": "",
		"CATTLE_ACCESS_KEY": demoAccess, "CATTLE_SECRET_KEY": demoSecret, "CATTLE_ACCESS_KEY_FILE": "", "CATTLE_SECRET_KEY_FILE": "",
		"AWS_REGION": demoRegion, "AWS_ECR_REGISTRY_IDS": demoAccount + "," + demoNewAccount, "AUTO_CREATE": "true",
		"ECR_PROXY_HOST": "", "AWS_ECR_PUBLIC": "false", "AWS_ROLE_ARN": "", "RANCHER_CA_FILE": "", "RANCHER_INSECURE_SKIP_VERIFY": "false", "RANCHER_SECRET_API": "auto",
	}
	if d.rancher2 {
		s["CATTLE_URL"], s["RANCHER_PROJECTS"] = d.rSrv.URL+"/v3", "all"
	}
	return s
}

// ECROption points the ECR client at the stand-in.
func (d *StandIns) ECROption(o *ecr.Options) { o.BaseEndpoint = aws.String(d.ecrSrv.URL) }

// AWSConfig is the demo's whole AWS configuration: static demo credentials
// and nothing read from the caller's environment or files, so AWS_PROFILE naming
// a profile that does not exist, or a broken ~/.aws/config, cannot break it.
func AWSConfig(region string) aws.Config {
	return aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIADEMODEMODEMODEMO", "demo-aws-secret", ""),
	}
}

// explain says what the demo is and what it seeded, and why, before any log
// line: the warning about the odd address is expected, not a fault.
func (d *StandIns) explain(out io.Writer) {
	fmt.Fprintln(out, "demo: a full refresh cycle against local stand-ins of ECR and Rancher; no cloud account, nothing outside this machine.")
	if d.rancher2 {
		fmt.Fprintf(out, "demo: seeded Rancher 2.x projects %s and %s (found through RANCHER_PROJECTS=all):\n", demoProject2a, demoProject2b)
		fmt.Fprintf(out, "demo:   %s: dockerCredential hub-and-ecr holds Docker Hub (a hand-kept password) and the ECR host: its other password cannot be read back, so it is left alone and the daemon writes its own ecr-%s-%s beside it\n", demoProject2a, demoAccount, demoRegion)
		fmt.Fprintf(out, "demo:   %s: the daemon's own ecr-%s-%s holds an expired token: it is updated in place\n", demoProject2b, demoAccount, demoRegion)
		fmt.Fprintf(out, "demo:   account %s has no credential anywhere: Rancher 2.x gets one per project without AUTO_CREATE\n", demoNewAccount)
		return
	}
	fmt.Fprintf(out, "demo: seeded Rancher 1.x environment %s with:\n", demoProject)
	fmt.Fprintln(out, "demo:   a Docker Hub registry with a hand-kept password: it must stay untouched")
	fmt.Fprintf(out, "demo:   the ECR registry of account %s holding an expired token: it gets a fresh one, in place\n", demoAccount)
	fmt.Fprintln(out, `demo:   a registry whose address "http://[bad address" is no host: skipped with one warning, the run goes on`)
	fmt.Fprintf(out, "demo:   no registry for account %s: AUTO_CREATE=true (set by the demo) creates it and its credential\n", demoNewAccount)
}

// Next says when the next refresh happens, in the user's local time and as a
// duration from now.
func (d *StandIns) Next(out io.Writer, next, now time.Time, once bool) {
	if next.IsZero() {
		return
	}
	in := strings.TrimSuffix(next.Sub(now).Round(time.Minute).String(), "0s")
	when := "next refresh"
	if once {
		when = "--once: exiting now; as a daemon the next refresh would be"
	}
	fmt.Fprintf(out, "demo: %s at %s local time (in %s): at half of the fresh tokens' 12 h life, whatever REFRESH_SCHEDULE says\n",
		when, next.Local().Format("15:04 MST"), in)
}

// Report prints what the stand-in Rancher holds now. Passwords are shown only as
// where they came from, never as values.
func (d *StandIns) Report(out io.Writer) {
	if d.rancher2 {
		for _, p := range []string{demoProject2a, demoProject2b} {
			fmt.Fprintf(out, "demo: Rancher project %s now holds:\n", p)
			for _, c := range d.rancher.DockerCredentials(p) {
				fmt.Fprintf(out, "  dockerCredential %-28s (written %d times by the demo)\n", c.Name, c.Writes)
				for _, h := range slices.Sorted(maps.Keys(c.Registries)) {
					fmt.Fprintf(out, "    %-45s user %-8s password: %s\n", h, c.Registries[h].Username, d.origin(c.Registries[h].Password))
				}
			}
		}
		return
	}
	fmt.Fprintf(out, "demo: Rancher environment %s now holds:\n", demoProject)
	for _, reg := range d.rancher.Registries(demoProject) {
		fmt.Fprintf(out, "  registry %-5s %s\n", reg.ID, reg.ServerAddress)
		for _, cr := range d.rancher.Credentials(demoProject) {
			if cr.RegistryID == reg.ID {
				fmt.Fprintf(out, "    credential %-5s user %-8s password: %s (written %d times by the demo)\n", cr.ID, cr.PublicValue, d.origin(cr.SecretValue), cr.Writes)
			}
		}
	}
}

// origin says where a password came from, without showing it.
func (d *StandIns) origin(pw string) string {
	for _, acct := range []string{demoAccount, demoNewAccount} {
		if p := d.ecr.Password(acct); p != "" && pw == p {
			return "fresh ECR token for " + acct
		}
	}
	return "kept as it was"
}

// Close stops the stand-ins.
func (d *StandIns) Close() {
	d.ecrSrv.Close()
	d.rSrv.Close()
}
