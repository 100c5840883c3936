package main

import (
	"fmt"
	"io"
	"net/http/httptest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi/ranchertest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher/ecrtest"
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

// demoStandIns are the local ECR and Rancher that --demo runs against: the same
// stand-ins the tests use.
type demoStandIns struct {
	ecr     *ecrtest.Server
	rancher *ranchertest.Server
	ecrSrv  *httptest.Server
	rSrv    *httptest.Server
}

func startDemo(out io.Writer) *demoStandIns {
	d := &demoStandIns{
		ecr:     ecrtest.New(demoAccount, demoRegion),
		rancher: ranchertest.New(ranchertest.Key{Access: demoAccess, Secret: demoSecret, Project: demoProject}),
	}
	// What an operator's environment typically holds: a Docker Hub registry kept
	// by hand, the ECR registry with a stale credential, and an odd address.
	hub := d.rancher.AddRegistry(demoProject, "index.docker.io", "")
	d.rancher.AddCredential(demoProject, hub, "someone", "hand-kept-password", "")
	ecrReg := d.rancher.AddRegistry(demoProject, d.ecr.Host(demoAccount), "")
	d.rancher.AddCredential(demoProject, ecrReg, "AWS", "expired-ecr-token", "")
	d.rancher.AddRegistry(demoProject, "http://[bad address", "")

	d.ecrSrv = httptest.NewServer(d.ecr)
	d.rSrv = httptest.NewServer(d.rancher)
	fmt.Fprintf(out, "demo: stand-in Rancher 1.x API at %s/v2-beta/projects/%s (access key %s, secret key %s)\n",
		d.rSrv.URL, demoProject, demoAccess, demoSecret)
	fmt.Fprintf(out, "demo: stand-in ECR API at %s (registries %s and %s in %s)\n", d.ecrSrv.URL, demoAccount, demoNewAccount, demoRegion)
	fmt.Fprintf(out, "demo: try: curl -su %s:%s %s/v2-beta/projects/%s/registrycredentials\n", demoAccess, demoSecret, d.rSrv.URL, demoProject)
	return d
}

// configure points the configuration at the stand-ins.
func (d *demoStandIns) configure(c Config) Config {
	c.CattleURL = d.rSrv.URL + "/v2-beta/projects/" + demoProject
	c.CattleAccessKey, c.CattleSecretKey = demoAccess, demoSecret
	c.Region = demoRegion
	c.Registries = []RegistrySpec{{demoAccount, demoRegion}, {demoNewAccount, demoRegion}}
	c.AutoCreate = true
	c.ProxyHost = ""
	c.RoleARN = ""
	c.RancherProjects = nil
	c.RancherCAFile, c.RancherInsecure = "", false
	return c
}

func (d *demoStandIns) ecrOption(o *ecr.Options) { o.BaseEndpoint = aws.String(d.ecrSrv.URL) }

func (d *demoStandIns) awsCredentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider("AKIADEMODEMODEMODEMO", "demo-aws-secret", "")
}

// report prints what the stand-in Rancher holds now. Passwords are shown only as
// where they came from, never as values.
func (d *demoStandIns) report(out io.Writer) {
	fmt.Fprintf(out, "demo: Rancher environment %s now holds:\n", demoProject)
	for _, reg := range d.rancher.Registries(demoProject) {
		fmt.Fprintf(out, "  registry %-5s %s\n", reg.ID, reg.ServerAddress)
		for _, cr := range d.rancher.Credentials(demoProject) {
			if cr.RegistryID != reg.ID {
				continue
			}
			from := "kept as it was"
			for _, acct := range []string{demoAccount, demoNewAccount} {
				if pw := d.ecr.Password(acct); pw != "" && cr.SecretValue == pw {
					from = "fresh ECR token for " + acct
				}
			}
			fmt.Fprintf(out, "    credential %-5s user %-8s password: %s (written %d times by the demo)\n", cr.ID, cr.PublicValue, from, cr.Writes)
		}
	}
}

func (d *demoStandIns) Close() {
	d.ecrSrv.Close()
	d.rSrv.Close()
}
