package cattle_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/rancherapi"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource/ecrtest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/cattle"
)

// The end-to-end rules of this target (every match written, in place, email,
// AUTO_CREATE races, nothing else touched) are tested against the Rancher
// stand-in through the refresher in refresher/refresher_test.go.

const host = "111122223333.dkr.ecr.us-east-1.amazonaws.com"

// store lists fixed registries; any other call is a bug in this test.
type store struct {
	cattle.Store
	regs []rancherapi.Registry
}

func (s store) ListRegistries(context.Context) ([]rancherapi.Registry, error) { return s.regs, nil }

// An ECR host with no registry while AUTO_CREATE is off fails its pair, names
// the fix, and is retried only after RETRY_MAX_INTERVAL: asking again soon
// would not create the registry. A registry being removed does not count.
func TestTarget_NoRegistry(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	src := refresher.Source{Region: "us-east-1", RegistryIDs: []string{"111122223333"},
		Client: ecrtest.Static(now.Add(12*time.Hour), ecrtest.Login{Host: host, Password: "pw"})}
	tg := &cattle.Target{Store: store{regs: []rancherapi.Registry{{ID: "1sp1", ServerAddress: host, State: "removing"}}}}
	r := refresher.New([]refresher.Source{src}, []refresher.Scope{{Name: "1a5", Target: tg}})
	r.Now = func() time.Time { return now }
	err := r.RunOnce(t.Context())
	if !errors.Is(err, cattle.ErrNoRegistry) || !strings.Contains(err.Error(), "set AUTO_CREATE=true") {
		t.Fatalf("err = %v, want ErrNoRegistry naming AUTO_CREATE", err)
	}
	st := r.Status()
	if len(st) != 1 || !st[0].NextAttempt.Equal(now.Add(r.RetryMaxInterval)) {
		t.Errorf("status = %+v, want the retry at RETRY_MAX_INTERVAL (%s)", st, r.RetryMaxInterval)
	}
}
