package projectsecret_test

import (
	"os"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/kubetest"
)

// server is the package's kube-apiserver and etcd, started by the first test
// that asks for it and stopped once every test has run.
var server kubetest.Shared

func TestMain(m *testing.M) { os.Exit(server.Run(m)) }
