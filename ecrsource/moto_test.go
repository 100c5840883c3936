package ecrsource_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/ecrsource"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/logbuf"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/mototest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// Against moto, a real emulator whose expiresAt is always 2015-01-01: the
// tokens decode, the expiry is taken as 12h from the fetch with one warning,
// and the refresher plans the next fetch at half of that, not at once.
func TestSource_Moto(t *testing.T) {
	t.Parallel()
	url := mototest.Start(t)
	client := func(region string) *ecr.Client {
		return ecr.New(ecr.Options{Region: region, BaseEndpoint: aws.String(url), RetryMaxAttempts: 1,
			Credentials: credentials.NewStaticCredentialsProvider("AKIDMOTO", awsSecret, "")})
	}
	src, log := newSource(client("us-east-1"))
	f := src.Fetch(t.Context())
	host := mototest.Account + ".dkr.ecr.us-east-1.amazonaws.com"
	if f.Err != nil || len(f.Problems) > 0 || len(f.Tokens) != 1 || f.Tokens[0].Host != host || f.Tokens[0].Username != "AWS" || f.Tokens[0].Password == "" {
		t.Fatalf("default registry: %+v", f)
	}
	if !f.Tokens[0].ExpiresAt.Equal(t0.Add(refresher.TokenLifetime)) {
		t.Errorf("expiry %v, want 12h from the fetch (moto answers 2015-01-01)", f.Tokens[0].ExpiresAt)
	}
	if got := strings.Count(log.String(), "assuming a 12h token"); got != 1 {
		t.Errorf("%d clamp warnings, want 1:\n%s", got, log)
	}

	eu := &ecrsource.Source{Client: client("eu-west-1"), AWSRegion: "eu-west-1", RegistryIDs: []string{idA, "555566667777"}, Logger: logger(&logbuf.Buffer{}),
		Now: func() time.Time { return t0 }}
	f = eu.Fetch(t.Context())
	if f.Err != nil || len(f.Problems) > 0 || len(f.Tokens) != 2 || f.Tokens[1].Host != "555566667777.dkr.ecr.eu-west-1.amazonaws.com" {
		t.Fatalf("two registries: %+v", f)
	}

	r := refresher.New([]refresher.Source{src, eu}, []refresher.Scope{{Name: "a", Target: nopTarget{}}})
	r.Logger, r.Now = logger(&logbuf.Buffer{}), func() time.Time { return t0 }
	r.Jitter = func(time.Duration) time.Duration { return 0 }
	_ = r.RunOnce(t.Context())
	if got, want := r.NextDue(), t0.Add(refresher.TokenLifetime/2); !got.Equal(want) {
		t.Errorf("next fetch at +%s, want +%s (half of the assumed 12h)", got.Sub(t0), want.Sub(t0))
	}
	noLeak(t, log.String(), f.Tokens[0].Password, awsSecret)
}

func noLeak(t *testing.T, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) || strings.Contains(out, b64("AWS:"+s)) {
			t.Errorf("output holds a secret %q", s)
		}
	}
}
