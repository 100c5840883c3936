package app

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/sirupsen/logrus"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/demo"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// mode is what differs between a real run and --demo; the demo's is chosen in
// one place, demoMode.
type mode struct {
	// aws is where the AWS configuration comes from.
	aws func(log logrus.FieldLogger) awsSetup
	// listen opens the HTTP server's listener on addr.
	listen func(addr string) (net.Listener, error)
	// listening, when set, is told where the HTTP server listens.
	listening func(addr net.Addr)
	// runDone, when set, makes the refresher's OnRunDone.
	runDone func(r *refresher.Refresher, once bool) func(error)
	// legacyAWSFiles warns about AWS files where the old image read them.
	legacyAWSFiles bool
	// process is true when the run is the whole process (Main): it sets
	// process-wide state, client-go's log sink.
	process bool
}

// realMode is the daemon as deployed.
func realMode(getenv func(string) string) mode {
	return mode{
		aws:            func(log logrus.FieldLogger) awsSetup { return defaultAWS(log, getenv) },
		listen:         func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) },
		legacyAWSFiles: true,
	}
}

// demoMode is --demo: the stand-ins' settings win over the caller's (Run
// parses them in), AWS is the stand-in's with static demo keys, the HTTP
// server takes any free port when its own is busy, and every run is followed
// by what the stand-in Rancher holds and when the next refresh comes.
func demoMode(d *demo.StandIns, stdout io.Writer) mode {
	return mode{
		aws: func(logrus.FieldLogger) awsSetup {
			return awsSetup{
				config:     func(_ context.Context, region string) (aws.Config, error) { return demo.AWSConfig(region), nil },
				ecrOptions: []func(*ecr.Options){d.ECROption},
			}
		},
		listen: func(addr string) (net.Listener, error) {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				ln, err = net.Listen("tcp", "127.0.0.1:0") // the demo must run on a busy machine too
			}
			return ln, err
		},
		listening: func(addr net.Addr) {
			_, port, _ := net.SplitHostPort(addr.String())
			fmt.Fprintf(stdout, "demo: daemon endpoints: http://127.0.0.1:%s/readyz, /healthz, /metrics, /ping (Ctrl-C to stop)\n", port)
		},
		runDone: func(r *refresher.Refresher, once bool) func(error) {
			return func(error) {
				d.Report(stdout)
				d.Next(stdout, r.NextDue(), r.Now(), once)
			}
		},
	}
}
