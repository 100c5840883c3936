package main

import (
	"strings"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// The Kubernetes target alone needs no Rancher settings; its bad values are
// named.
func TestParseConfig_Kube(t *testing.T) {
	t.Parallel()
	c, err := ParseConfig(nil, envOf(map[string]string{"KUBE_NAMESPACES": "team-*,web", "AWS_REGION": "eu-west-1", "KUBE_SERVICE_ACCOUNTS": "default,builder"}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Kube() || c.CattleURL != "" || c.KubeSecretName != "ecr-credentials" || len(c.KubeServiceAccounts) != 2 {
		t.Errorf("config %+v", c)
	}
	if c, err := ParseConfig(nil, envOf(map[string]string{"KUBE_NAMESPACE_SELECTOR": "ecr=yes", "AWS_REGION": "eu-west-1"})); err != nil || !c.Kube() {
		t.Errorf("selector alone: %v", err)
	}
	_, err = ParseConfig(nil, envOf(map[string]string{
		"KUBE_NAMESPACES": "all,x", "KUBE_NAMESPACE_SELECTOR": "a in (", "KUBE_SECRET_NAME": "Bad_Name",
		"KUBE_SERVICE_ACCOUNTS": "no spaces", "LEADER_ELECTION_NAMESPACE": "-x",
	}))
	for _, want := range []string{"KUBE_NAMESPACES:", "KUBE_SECRET_NAME:", "KUBE_SERVICE_ACCOUNTS:", "LEADER_ELECTION_NAMESPACE:", "AWS_REGION:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %s", err, want)
		}
	}
	_, err = ParseConfig(nil, envOf(map[string]string{"AWS_REGION": "eu-west-1"}))
	if err == nil || !strings.Contains(err.Error(), "KUBE_NAMESPACES") {
		t.Errorf("neither Rancher nor Kubernetes: %v", err)
	}
}

type fakeRole struct {
	role, leader string
	fresh        bool
}

func (f fakeRole) Role(time.Time) (string, string, bool) { return f.role, f.leader, f.fresh }

func TestFollowerReadiness(t *testing.T) {
	t.Parallel()
	notReady := refresher.Readiness{Ready: false, Reason: "no credential written"}
	for _, c := range []struct {
		e         fakeRole
		rd        refresher.Readiness
		wantReady bool
		reason    string
	}{
		{fakeRole{"leader", "me", true}, notReady, false, "no credential written"},
		{fakeRole{"leader", "me", true}, refresher.Readiness{Ready: true}, true, ""},
		{fakeRole{"follower", "pod-a", true}, notReady, true, ""},
		{fakeRole{"follower", "pod-a", false}, notReady, false, "has not renewed"},
		{fakeRole{"follower", "", false}, notReady, false, "no replica holds the lease"},
	} {
		_, _, ready, reason := followerReadiness(c.e, time.Now(), c.rd)
		if ready != c.wantReady || !strings.Contains(reason, c.reason) {
			t.Errorf("%+v: ready %v reason %q", c.e, ready, reason)
		}
	}
}
