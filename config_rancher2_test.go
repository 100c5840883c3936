package main

import (
	"testing"
)

// Inside the local cluster: no CATTLE_URL, no key, project ids named.
func TestParseConfig_InCluster(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig(nil, envOf(map[string]string{"AWS_REGION": "us-east-1", "RANCHER_PROJECTS": "local:p-abcde, c-m-abc123:p-vwxyz"}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.InCluster || c.SecretAPI != SecretAPIAuto || len(c.RancherProjects) != 2 {
		t.Errorf("config = %+v", c)
	}
	if f := c.LogFields(); f["cattle_url"] != "(none: in-cluster Kubernetes API)" || f["rancher_secret_api"] != "auto" {
		t.Errorf("LogFields = %v", f)
	}
	c, err = ParseConfig([]string{"--rancher-secret-api=Kubernetes"}, envOf(map[string]string{"AWS_REGION": "us-east-1", "RANCHER_PROJECTS": "all"}))
	if err != nil || !c.InCluster || !c.AllProjects || c.SecretAPI != SecretAPIKubernetes {
		t.Errorf("all: %+v, %v", c, err)
	}
}
