package multihost_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/plantest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/multihost"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/registryhost"
)

const (
	hostA   = "111122223333.dkr.ecr.us-east-1.amazonaws.com"
	hostB   = "444455556666.dkr.ecr.us-east-1.amazonaws.com"
	hostC   = "555566667777.dkr.ecr.eu-west-1.amazonaws.com"
	foreign = "index.docker.io"
)

func input(log *logbuf.Buffer, hosts []string, also ...string) refresher.Input {
	l := logrus.New()
	l.SetOutput(log)
	var toks []refresher.Token
	for _, h := range hosts {
		toks = append(toks, plantest.Token(h, "pw-"+h))
	}
	return plantest.Input(l, toks, also...)
}

func hosts(a multihost.Assignment) string {
	var hs []string
	for _, t := range a.Tokens {
		hs = append(hs, t.Host)
	}
	return strings.Join(hs, ",")
}

// Each object is assigned once with every host it holds, each once, even when
// it holds a host under two spellings or is found by two hosts.
func TestPlan_EachObjectOnceWithEveryHost(t *testing.T) {
	t.Parallel()
	var log logbuf.Buffer
	objs := []multihost.Object{{Key: "1", Name: "both", Hosts: []string{hostA, hostB, hostB}}}
	as, fs := multihost.Assign(input(&log, []string{hostA, hostB}), objs, registryhost.CredentialName)
	if len(fs) != 0 || len(as) != 1 || as[0].Object == nil || hosts(as[0]) != hostA+","+hostB || len(as[0].Kept) != 0 {
		t.Fatalf("assignments %+v, failures %v: want both once, with both hosts", as, fs)
	}
}

// A host whose token is not in hand is kept; one of a new object never is.
func TestPlan_Kept(t *testing.T) {
	t.Parallel()
	var log logbuf.Buffer
	objs := []multihost.Object{{Key: "1", Name: "two-regions", Hosts: []string{hostA, hostC}}}
	as, _ := multihost.Assign(input(&log, []string{hostA, hostB}, hostC), objs, registryhost.CredentialName)
	if len(as) != 2 || hosts(as[0]) != hostA || strings.Join(as[0].Kept, ",") != hostC || as[1].Object != nil || as[1].Name != registryhost.CredentialName(hostB) {
		t.Fatalf("assignments = %+v", as)
	}
}

// An object not wholly ours is never assigned: noted once (information, not a
// warning) when it holds a host being written, and a failure, named by its
// Title, only when it bears the name the host needs.
func TestPlan_NotOurs(t *testing.T) {
	t.Parallel()
	var log logbuf.Buffer
	nameA := registryhost.CredentialName(hostA)
	refused := errors.New("made by someone else")
	objs := []multihost.Object{
		{Key: "1", Name: nameA, Title: "dockerCredential " + nameA, Hosts: []string{foreign}},
		{Key: "2", Name: "shared", Hosts: []string{hostA, hostB, foreign}},
		{Key: "3", Name: "theirs", Hosts: []string{hostB}, Refused: refused},
		{Key: "4", Name: "unknown", Unknown: true},
	}
	as, fs := multihost.Assign(input(&log, []string{hostA, hostB}), objs, registryhost.CredentialName)
	if len(as) != 1 || as[0].Object != nil || hosts(as[0]) != hostB {
		t.Errorf("assignments = %+v, want only a new object for %s", as, hostB)
	}
	if len(fs) != 1 || fs[0].Host != hostA || !strings.Contains(fs[0].Err.Error(), "dockerCredential "+nameA+" exists and also holds hosts this process does not manage (\"index.docker.io\")") ||
		!plantest.Permanent(fs[0].Err) {
		t.Errorf("failures = %v", fs)
	}
	out := log.String()
	if strings.Count(out, "left untouched") != 2 || !strings.Contains(out, "credential=shared") || !strings.Contains(out, "credential=theirs") ||
		strings.Contains(out, "credential=unknown") || !strings.Contains(out, "level=warning") {
		t.Errorf("notes:\n%s", out)
	}

	// Our name taken by one that is someone else's: its own reason.
	objs = []multihost.Object{{Key: "1", Name: nameA, Hosts: []string{hostA}, Refused: refused}}
	if _, fs := multihost.Assign(input(&log, []string{hostA}), objs, registryhost.CredentialName); len(fs) != 1 || !errors.Is(fs[0].Err, refused) {
		t.Errorf("failures = %v, want the refusal", fs)
	}
}

// An update-only object is refreshed when wholly ours but never stands in for
// the object a host needs: that one is still made.
func TestPlan_UpdateOnly(t *testing.T) {
	t.Parallel()
	var log logbuf.Buffer
	nameA := registryhost.CredentialName(hostA)
	objs := []multihost.Object{{Key: "ns:x", Name: nameA, Hosts: []string{hostA}, UpdateOnly: true}}
	as, fs := multihost.Assign(input(&log, []string{hostA}), objs, registryhost.CredentialName)
	if len(fs) != 0 || len(as) != 2 || as[0].Object != nil || as[0].Name != nameA || as[1].Object == nil {
		t.Errorf("assignments %+v, failures %v: want a new %s and the update-only one", as, fs, nameA)
	}
}

// With TakeBack (a new or changed identity, a refused one), a managed host
// without a token is dropped, not kept, and an object wholly ours holding
// none of the tokens is assigned with only its hosts to drop; one that is
// not ours, or holds a host of others, is not.
func TestAssign_TakeBack(t *testing.T) {
	t.Parallel()
	var log logbuf.Buffer
	objs := []multihost.Object{
		{Key: "1", Name: "own-account", Hosts: []string{hostA}},
		{Key: "2", Name: "mixed", Hosts: []string{hostA, hostB}},
		{Key: "3", Name: "not-ours", Hosts: []string{hostA}, Refused: errors.New("someone else's")},
		{Key: "4", Name: "shared", Hosts: []string{hostA, foreign}},
	}
	in := input(&log, []string{hostB}, hostA)
	in.TakeBack = true
	as, _ := multihost.Assign(in, objs, registryhost.CredentialName)
	got := map[string]string{}
	for _, a := range as {
		got[a.Name] = hosts(a) + " drop " + strings.Join(a.Dropped, ",") + " keep " + strings.Join(a.Kept, ",")
	}
	want := map[string]string{"mixed": hostB + " drop " + hostA + " keep ", "own-account": " drop " + hostA + " keep "}
	if len(got) != len(want) || got["mixed"] != want["mixed"] || got["own-account"] != want["own-account"] {
		t.Errorf("assignments %q, want %q", got, want)
	}

	in.TakeBack = false
	as, _ = multihost.Assign(in, objs, registryhost.CredentialName)
	if len(as) != 1 || as[0].Name != "mixed" || strings.Join(as[0].Kept, ",") != hostA || len(as[0].Dropped) != 0 {
		t.Errorf("without TakeBack: %+v, want only mixed, keeping %s", as, hostA)
	}
}
