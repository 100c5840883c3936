package refresher

import (
	"sync"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"
)

// cronLogger adapts a logrus logger to cron.Logger. cron's Info lines (schedule,
// wake) go to Debug: the refresher logs its own line per run.
//
// cron's goroutine may still log after Stop returns, so close makes later lines
// vanish: nothing is written through the refresher's logger once Run has returned.
type cronLogger struct {
	mu     sync.Mutex
	closed bool
	l      logrus.FieldLogger
}

var _ cron.Logger = (*cronLogger)(nil)

func (c *cronLogger) Info(msg string, kv ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.l.WithFields(fields(kv)).Debug("cron: " + msg)
	}
}

func (c *cronLogger) Error(err error, msg string, kv ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.l.WithFields(fields(kv)).WithError(err).Error("cron: " + msg)
	}
}

func (c *cronLogger) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

func fields(kv []any) logrus.Fields {
	f := logrus.Fields{}
	for i := 0; i+1 < len(kv); i += 2 {
		if k, ok := kv[i].(string); ok {
			f[k] = kv[i+1]
		}
	}
	return f
}
