package plantest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/internal/plantest"
	"github.com/rancher-ecr-credentials/rancher-ecr-credentials/refresher"
)

// target plans one write of every token into "obj", stale when told.
type target struct {
	stale   bool
	applies int
	fail    error
}

func (tg *target) Plan(_ context.Context, want refresher.Input) (refresher.Plan, error) {
	return refresher.Plan{Writes: []refresher.Write{{Object: "obj", Tokens: want.Tokens, Stale: tg.stale,
		Apply: func(context.Context) (refresher.Result, error) {
			tg.applies++
			return refresher.ResultUpdated, tg.fail
		}}}}, nil
}

// Memory skips a write of the same content to the same object, as the
// refresher does, unless it is stale or the content changed; a failed write
// is not remembered.
func TestMemory_Run(t *testing.T) {
	t.Parallel()
	var m plantest.Memory
	tg := &target{}
	pass := func(pw string, want refresher.Result) {
		t.Helper()
		in := plantest.Input(nil, []refresher.Token{plantest.Token("h.example.com", pw)})
		o, err := m.Run(t.Context(), tg, in)
		if err != nil || len(o.Results) != 1 || o.Results[0] != want {
			t.Fatalf("pass with %s: %v, %v; want %s", pw, o.Results, err, want)
		}
	}
	pass("a", refresher.ResultUpdated)
	pass("a", refresher.ResultUnchanged)
	pass("b", refresher.ResultUpdated)
	tg.stale = true
	pass("b", refresher.ResultUpdated)
	tg.stale, tg.fail = false, errors.New("boom")
	pass("c", refresher.ResultFailed)
	tg.fail = nil
	pass("c", refresher.ResultUpdated)
	if tg.applies != 5 {
		t.Errorf("applies = %d, want 5", tg.applies)
	}
}

func TestOutcome_Err(t *testing.T) {
	t.Parallel()
	o := plantest.Outcome{
		Plan: refresher.Plan{Failures: []refresher.Failure{{Host: "a.example.com", Err: errors.New("no registry")}},
			Writes: []refresher.Write{{Tokens: []refresher.Token{{Host: "b.example.com"}}}, {Tokens: []refresher.Token{{Host: "c.example.com"}}}}},
		Results: []refresher.Result{refresher.ResultFailed, refresher.ResultUpdated},
		Errors:  []error{errors.New("500"), nil},
	}
	if err := o.Err(); err == nil || !strings.Contains(err.Error(), "a.example.com: no registry") || !strings.Contains(err.Error(), "b.example.com: 500") ||
		strings.Contains(err.Error(), "c.example.com") {
		t.Errorf("Err = %v", err)
	}
	if !plantest.Permanent(refresher.Permanent(errors.New("x"))) || plantest.Permanent(errors.New("x")) || plantest.Permanent(context.DeadlineExceeded) {
		t.Error("Permanent disagrees with refresher.Permanent")
	}
}
