package kubetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// AuditEvent is one request as the server's audit log records it (audit.k8s.io/v1 Event, level
// Metadata: https://kubernetes.io/docs/tasks/debug/debug-cluster/audit/).
type AuditEvent struct {
	AuditID    string `json:"auditID"`
	Stage      string `json:"stage"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string   `json:"username"`
		Groups   []string `json:"groups"`
	} `json:"user"`
	// ImpersonatedUser is set when User made the request as another (Impersonate-User), as
	// Rancher's proxy does for its users.
	ImpersonatedUser *struct {
		Username string `json:"username"`
	} `json:"impersonatedUser"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Namespace   string `json:"namespace"`
		Name        string `json:"name"`
		APIGroup    string `json:"apiGroup"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	RequestReceived time.Time `json:"requestReceivedTimestamp"`
}

// AuditEvents returns every request the server has recorded, one event per request (a watch still
// open shows its ResponseStarted event, a finished request its ResponseComplete event), in log order.
//
// The audit log is written in blocking mode, and the event of a request that is not long-running is
// written before its response reaches the client: once a client has its answer, the request is here.
func (s *Server) AuditEvents() ([]AuditEvent, error) {
	data, err := os.ReadFile(s.auditFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no request yet
	}
	if err != nil {
		return nil, err
	}
	// A line still being written is left for the next call.
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	var events []AuditEvent
	index := map[string]int{}
	for line := range bytes.Lines(data) {
		var ev AuditEvent
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("audit log %s: %w", s.auditFile, err)
		}
		if i, ok := index[ev.AuditID]; ok {
			events[i] = ev // a later stage of the same request
			continue
		}
		index[ev.AuditID] = len(events)
		events = append(events, ev)
	}
	return events, nil
}

// Requests returns the number of requests user has made so far (the user of a ServiceAccount token is
// system:serviceaccount:<namespace>:<name>).
func (s *Server) Requests(user string) (int, error) {
	events, err := s.AuditEvents()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, ev := range events {
		if ev.User.Username == user {
			n++
		}
	}
	return n, nil
}
