package projectsecret_test

import (
	"slices"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/kubeapi"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/targets/projectsecret"
)

// A new process refreshing a project's Secret that a list has just returned
// writes from that Secret: the project, one list, one update. Not a create
// that ends in 409, then a read, then the update. Counted in the API
// server's audit log, as the ServiceAccount the daemon runs as.
func TestRefreshIsOneUpdate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "", true)
	c := e.serviceAccount(e.cluster)
	user := "system:serviceaccount:" + e.cluster + ":ecr"
	if err := e.run(&projectsecret.Target{Cluster: c, Project: e.id}); err != nil {
		t.Fatal(err)
	}
	first := e.checkWritten()
	events, err := e.Srv.AuditEvents()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := e.Srv.ServiceAccountConfig(t.Context(), e.cluster, "ecr")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := projectsecret.NewCluster(kubeapi.Prepare(cfg, kubeapi.Options{UserAgent: "test"}), false) // a new process: nothing in memory
	if err != nil {
		t.Fatal(err)
	}
	if err := e.run(&projectsecret.Target{Cluster: fresh, Project: e.id}); err != nil {
		t.Fatal(err)
	}
	if again := e.checkWritten(); again.UID != first.UID {
		t.Errorf("uid %s → %s: want an update in place", first.UID, again.UID)
	}
	all, err := e.Srv.AuditEvents()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range all[len(events):] {
		if ev.User.Username == user && ev.ObjectRef != nil {
			got = append(got, ev.Verb+" "+ev.ObjectRef.Resource)
		}
	}
	if want := []string{"get projects", "list secrets", "update secrets"}; !slices.Equal(got, want) {
		t.Errorf("the refresh made %q, want %q", got, want)
	}
}
