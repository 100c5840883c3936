package kubetest

import (
	"bufio"
	"encoding/json"
	"fmt"
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
	f, err := os.Open(s.auditFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var events []AuditEvent
	index := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		var ev AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("audit log %s: %w", s.auditFile, err)
		}
		if i, ok := index[ev.AuditID]; ok {
			events[i] = ev // a later stage of the same request
			continue
		}
		index[ev.AuditID] = len(events)
		events = append(events, ev)
	}
	return events, sc.Err()
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
