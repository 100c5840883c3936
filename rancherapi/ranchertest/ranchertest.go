// Package ranchertest is an in-memory stand-in for the Rancher 1.x (Cattle) API,
// as much of it as registries and registry credentials need. Tests and --demo use
// it. It copies the behaviour recorded in shared/spec/rancher-api.md §1, including
// the traps: the serverAddress filter is ignored, secretValue is write-only, /v1
// requires email, lists are paginated, links are lowercased and slashes escaped,
// and a duplicate serverAddress is refused with ServerAddressUsed.
package ranchertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Key is an API key pair. Project is the environment the key acts on when a
// request names none; Projects lists every environment it may name (an
// environment key may name only its own).
type Key struct {
	Access, Secret string
	Project        string
	Projects       []string
}

// Registry is a stored registry.
type Registry struct {
	ID, Project, ServerAddress, Name, Description, State string
}

// Credential is a stored credential, secret included, for assertions.
type Credential struct {
	ID, Project, RegistryID, PublicValue, SecretValue, Email, State string
	// Writes counts creates and updates of this credential.
	Writes int
}

// Server is the stand-in. Serve it with httptest.NewServer(s).
type Server struct {
	mu       sync.Mutex
	keys     []Key
	regs     map[string]*Registry // by id
	creds    map[string]*Credential
	nextID   int
	requests atomic.Int64

	intercept atomic.Pointer[func(http.ResponseWriter, *http.Request) bool]
}

// New returns an empty server that accepts the given keys.
func New(keys ...Key) *Server {
	return &Server{keys: keys, regs: map[string]*Registry{}, creds: map[string]*Credential{}, nextID: 1}
}

// SetIntercept installs a hook run before every request, after counting it. When
// it returns true it has answered and the server does nothing more; use it to
// inject faults. nil removes it.
func (s *Server) SetIntercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	if f == nil {
		s.intercept.Store(nil)
		return
	}
	s.intercept.Store(&f)
}

// Requests returns how many requests were received.
func (s *Server) Requests() int64 { return s.requests.Load() }

// AddRegistry stores a registry directly and returns its id. state "" is active.
func (s *Server) AddRegistry(project, serverAddress, state string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addRegistry(project, serverAddress, state).ID
}

func (s *Server) addRegistry(project, addr, state string) *Registry {
	if state == "" {
		state = "active"
	}
	r := &Registry{ID: fmt.Sprintf("1sp%d", s.nextID), Project: project, ServerAddress: addr, State: state}
	s.nextID++
	s.regs[r.ID] = r
	return r
}

// AddCredential stores a credential directly and returns its id. state "" is active.
func (s *Server) AddCredential(project, registryID, publicValue, secretValue, state string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addCredential(project, registryID, publicValue, secretValue, "", state).ID
}

func (s *Server) addCredential(project, registryID, pub, secret, email, state string) *Credential {
	if state == "" {
		state = "active"
	}
	c := &Credential{ID: fmt.Sprintf("1c%d", s.nextID), Project: project, RegistryID: registryID,
		PublicValue: pub, SecretValue: secret, Email: email, State: state}
	s.nextID++
	s.creds[c.ID] = c
	return c
}

// Registries returns copies of the stored registries of a project, by id.
func (s *Server) Registries(project string) []Registry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Registry
	for _, r := range s.regs {
		if r.Project == project {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b Registry) int { return cmpID(a.ID, b.ID) })
	return out
}

// Credentials returns copies of the stored credentials of a project, by id.
func (s *Server) Credentials(project string) []Credential {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Credential
	for _, c := range s.creds {
		if c.Project == project {
			out = append(out, *c)
		}
	}
	slices.SortFunc(out, func(a, b Credential) int { return cmpID(a.ID, b.ID) })
	return out
}

// Credential returns a copy of one stored credential.
func (s *Server) Credential(id string) (Credential, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.creds[id]
	if !ok {
		return Credential{}, false
	}
	return *c, true
}

// idNum is the number in an id such as "1sp12" (Cattle orders lists by it).
func idNum(id string) int {
	i := strings.LastIndexFunc(id, func(r rune) bool { return r < '0' || r > '9' })
	n, _ := strconv.Atoi(id[i+1:])
	return n
}

func cmpID(a, b string) int { return idNum(a) - idNum(b) }

// ServeHTTP routes /<prefix>/{v1|v2-beta}[/projects/<id>]/<type>[/<id>].
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	if f := s.intercept.Load(); f != nil && (*f)(w, r) {
		return
	}
	key, ok := s.authenticate(r)
	if !ok {
		if r.Header.Get("X-API-No-Challenge") == "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="Enter API access key and secret key as username and password"`)
		}
		writeError(w, http.StatusUnauthorized, "Unauthorized", "Unauthorized", "")
		return
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	ver := slices.IndexFunc(segs, func(s string) bool { return s == "v1" || s == "v2-beta" })
	if ver < 0 {
		writeError(w, http.StatusNotFound, "Not Found", "Not Found", "")
		return
	}
	version, rest := segs[ver], segs[ver+1:]
	project := key.Project
	if len(rest) >= 2 && strings.EqualFold(rest[0], "projects") {
		// Cattle scopes only when a segment follows the id (spec §1.1).
		if len(rest) == 2 {
			writeJSON(w, http.StatusOK, map[string]any{"id": rest[1], "type": "project", "links": map[string]any{}})
			return
		}
		project, rest = rest[1], rest[2:]
	}
	if h := r.Header.Get("X-API-Project-Id"); h != "" {
		project = h
	}
	if !slices.Contains(key.Projects, project) && project != key.Project {
		writeError(w, http.StatusForbidden, "Forbidden", "Forbidden", "")
		return
	}
	if len(rest) == 0 || len(rest) > 2 {
		writeError(w, http.StatusNotFound, "Not Found", "Not Found", "")
		return
	}
	typ := cattleType(rest[0])
	id := ""
	if len(rest) == 2 {
		id = rest[1]
	}
	h := handler{s: s, w: w, r: r, version: version, project: project, base: s.baseURL(r, segs[:ver+1], project)}
	switch {
	case typ == "registry" && id == "" && r.Method == http.MethodGet:
		h.listRegistries()
	case typ == "registry" && id == "" && r.Method == http.MethodPost:
		h.createRegistry()
	case typ == "registry" && id != "" && r.Method == http.MethodGet:
		h.getRegistry(id)
	case typ == "registrycredential" && id == "" && r.Method == http.MethodGet:
		h.listCredentials()
	case typ == "registrycredential" && id == "" && r.Method == http.MethodPost:
		h.createCredential()
	case typ == "registrycredential" && id != "" && r.Method == http.MethodPut:
		h.updateCredential(id)
	case typ == "registry" || typ == "registrycredential":
		writeError(w, http.StatusMethodNotAllowed, "Method not allowed", "Method not allowed", "")
	default:
		writeError(w, http.StatusNotFound, "Not Found", "Not Found", "")
	}
}

// cattleType maps a path's type name to its schema: case-insensitive, plural or
// singular (spec §1.1).
func cattleType(name string) string {
	switch strings.ToLower(name) {
	case "registry", "registries":
		return "registry"
	case "registrycredential", "registrycredentials":
		return "registrycredential"
	}
	return ""
}

func (s *Server) authenticate(r *http.Request) (Key, bool) {
	a, sec, ok := r.BasicAuth()
	if !ok {
		return Key{}, false
	}
	for _, k := range s.keys {
		if k.Access == a && k.Secret == sec {
			return k, true
		}
	}
	return Key{}, false
}

// baseURL is what Cattle puts in links: lowercased, scoped to the project.
func (s *Server) baseURL(r *http.Request, prefix []string, project string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return strings.ToLower(fmt.Sprintf("%s://%s/%s/projects/%s", scheme, r.Host, strings.Join(prefix, "/"), project))
}

type handler struct {
	s       *Server
	w       http.ResponseWriter
	r       *http.Request
	version string
	project string
	base    string
}

func (h handler) registryJSON(r *Registry) map[string]any {
	self := h.base + "/registries/" + r.ID
	return map[string]any{
		"id": r.ID, "type": "registry", "kind": "registry", "baseType": "storagePool",
		"links":     map[string]any{"self": self, "credentials": self + "/credentials"},
		"actions":   map[string]any{"update": self + "/?action=update", "deactivate": self + "/?action=deactivate"},
		"accountId": r.Project, "serverAddress": r.ServerAddress, "state": r.State, "transitioning": "no",
		"name": nullable(r.Name), "description": nullable(r.Description), "removed": nil, "created": "2017-06-01T15:04:05Z",
	}
}

func (h handler) credentialJSON(c *Credential, withSecret bool) map[string]any {
	self := h.base + "/registrycredentials/" + c.ID
	m := map[string]any{
		"id": c.ID, "type": "registryCredential", "kind": "registryCredential", "baseType": "credential",
		"links":     map[string]any{"self": self, "registry": self + "/registry"},
		"actions":   map[string]any{"update": self + "/?action=update", "deactivate": self + "/?action=deactivate"},
		"accountId": c.Project, "registryId": c.RegistryID, "publicValue": c.PublicValue, "secretValue": nil,
		"state": c.State, "transitioning": "no", "name": nil, "removed": nil,
	}
	if withSecret { // readOnCreateOnly (spec §1.5)
		m["secretValue"] = c.SecretValue
	}
	if h.version == "v1" { // v2-beta ≥ Rancher 1.5.4 has no email field (spec §1.12)
		m["email"] = c.Email
	}
	return m
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// page applies Cattle's limit/marker pagination (spec §1.7) and writes the envelope.
func (h handler) page(resourceType string, items []map[string]any) {
	q := h.r.URL.Query()
	limit := 100
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err == nil {
			limit = n
		}
		if limit <= 0 || limit > 3000 {
			limit = 3000
		}
	}
	offset := 0
	if m := q.Get("marker"); strings.HasPrefix(m, "m") {
		offset, _ = strconv.Atoi(m[1:])
	}
	offset = min(max(offset, 0), len(items))
	end := min(offset+limit, len(items))
	var next any
	if end < len(items) {
		cur := *h.r.URL
		cq := cur.Query()
		cq.Set("marker", "m"+strconv.Itoa(end))
		cur.RawQuery = cq.Encode()
		scheme := "http"
		if h.r.TLS != nil {
			scheme = "https"
		}
		next = scheme + "://" + h.r.Host + cur.RequestURI() // keeps the request's case
	}
	data := items[offset:end]
	if data == nil {
		data = []map[string]any{}
	}
	writeJSON(h.w, http.StatusOK, map[string]any{
		"type": "collection", "resourceType": resourceType,
		"links": map[string]any{"self": h.base}, "createTypes": map[string]any{}, "actions": map[string]any{},
		"data": data, "sort": nil, "filters": map[string]any{}, "createDefaults": map[string]any{},
		"pagination": map[string]any{"first": nil, "previous": nil, "next": next, "limit": limit, "total": nil, "partial": next != nil},
	})
}

func (h handler) listRegistries() {
	h.s.mu.Lock()
	var items []map[string]any
	for _, r := range h.s.sortedRegistries(h.project) {
		// serverAddress lives in a JSON blob and cannot be filtered: ignored (spec §1.7).
		if st := h.r.URL.Query().Get("state"); st != "" && st != r.State {
			continue
		}
		items = append(items, h.registryJSON(r))
	}
	h.s.mu.Unlock()
	h.page("registry", items)
}

func (s *Server) sortedRegistries(project string) []*Registry {
	var out []*Registry
	for _, r := range s.regs {
		if r.Project == project && r.State != "removed" && r.State != "purged" {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *Registry) int { return cmpID(a.ID, b.ID) })
	return out
}

func (h handler) getRegistry(id string) {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	r, ok := h.s.regs[id]
	if !ok || r.Project != h.project {
		writeError(h.w, http.StatusNotFound, "Not Found", "Not Found", "")
		return
	}
	writeJSON(h.w, http.StatusOK, h.registryJSON(r))
}

func (h handler) createRegistry() {
	var in map[string]any
	if !h.decode(&in) {
		return
	}
	addr, _ := in["serverAddress"].(string)
	if _, present := in["serverAddress"]; !present {
		writeError(h.w, http.StatusUnprocessableEntity, "MissingRequired", "", "serverAddress")
		return
	}
	if addr == "" {
		writeError(h.w, http.StatusUnprocessableEntity, "MinLengthExceeded", "", "serverAddress")
		return
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	for _, r := range h.s.sortedRegistries(h.project) {
		if strings.EqualFold(r.ServerAddress, addr) { // raw, case-insensitive (spec §1.13)
			writeError(h.w, http.StatusBadRequest, "ServerAddressUsed", "ServerAddressUsed", "")
			return
		}
	}
	r := h.s.addRegistry(h.project, addr, "active")
	r.Name, _ = in["name"].(string)
	r.Description, _ = in["description"].(string)
	out := h.registryJSON(r)
	out["state"] = "registering" // as returned by a real create; stored as active
	writeJSON(h.w, http.StatusCreated, out)
}

func (h handler) listCredentials() {
	q := h.r.URL.Query()
	h.s.mu.Lock()
	var list []*Credential
	for _, c := range h.s.creds {
		if c.Project != h.project || c.State == "removed" || c.State == "purged" {
			continue
		}
		if v, ok := q["registryId"]; ok && strconv.Itoa(idNum(c.RegistryID)) != strconv.Itoa(idNum(v[0])) {
			continue
		}
		list = append(list, c)
	}
	slices.SortFunc(list, func(a, b *Credential) int { return cmpID(a.ID, b.ID) })
	items := make([]map[string]any, 0, len(list))
	for _, c := range list {
		items = append(items, h.credentialJSON(c, false))
	}
	h.s.mu.Unlock()
	h.page("registryCredential", items)
}

// checkCredentialFields applies Cattle's field validation (spec §1.5, §1.9, §1.11).
func (h handler) checkCredentialFields(in map[string]any, create bool) bool {
	if h.version == "v1" {
		email, present := in["email"]
		switch {
		case create && !present:
			writeError(h.w, http.StatusUnprocessableEntity, "MissingRequired", "", "email")
			return false
		case present && email == nil:
			writeError(h.w, http.StatusUnprocessableEntity, "NotNullable", "", "email")
			return false
		case present && email == "":
			writeError(h.w, http.StatusUnprocessableEntity, "MinLengthExceeded", "", "email")
			return false
		}
	}
	for _, f := range []string{"publicValue", "secretValue"} {
		if v, ok := in[f].(string); ok && len(v) > 4096 {
			writeError(h.w, http.StatusUnprocessableEntity, "MaxLengthExceeded", "", f)
			return false
		}
	}
	return true
}

func (h handler) createCredential() {
	var in map[string]any
	if !h.decode(&in) {
		return
	}
	regID, _ := in["registryId"].(string)
	if regID == "" {
		writeError(h.w, http.StatusUnprocessableEntity, "MissingRequired", "", "registryId")
		return
	}
	if !h.checkCredentialFields(in, true) {
		return
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if r, ok := h.s.regs[regID]; !ok || r.Project != h.project {
		writeError(h.w, http.StatusUnprocessableEntity, "InvalidReference", "", "registryId")
		return
	}
	pub, _ := in["publicValue"].(string)
	sec, _ := in["secretValue"].(string)
	email, _ := in["email"].(string)
	c := h.s.addCredential(h.project, regID, pub, sec, email, "active")
	c.Writes++
	writeJSON(h.w, http.StatusCreated, h.credentialJSON(c, true))
}

func (h handler) updateCredential(id string) {
	var in map[string]any
	if !h.decode(&in) {
		return
	}
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	c, ok := h.s.creds[id]
	if !ok || c.Project != h.project || c.State == "removed" {
		writeError(h.w, http.StatusNotFound, "Not Found", "Not Found", "")
		return
	}
	if !h.checkCredentialFields(in, false) {
		return
	}
	// Partial update; registryId and unknown fields are silently dropped (spec §1.11).
	if v, ok := in["publicValue"].(string); ok {
		c.PublicValue = v
	}
	if v, ok := in["secretValue"].(string); ok {
		c.SecretValue = v
	}
	if v, ok := in["email"].(string); ok && h.version == "v1" {
		c.Email = v
	}
	c.Writes++
	writeJSON(h.w, http.StatusOK, h.credentialJSON(c, false))
}

func (h handler) decode(v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(h.w, h.r.Body, 1<<20)).Decode(v); err != nil {
		writeError(h.w, http.StatusBadRequest, "InvalidBodyContent", "", "")
		return false
	}
	return true
}

func writeError(w http.ResponseWriter, status int, code, message, field string) {
	body := map[string]any{
		"id": "5d643128-edca-4ed2-8768-ff4de54b97d2", "type": "error", "baseType": "error",
		"links": map[string]any{}, "actions": map[string]any{},
		"status": status, "code": code, "message": nullable(message), "detail": nil,
	}
	if field != "" {
		body["fieldName"] = field
	}
	writeJSON(w, status, body)
}

// writeJSON writes v the way Cattle's Jackson writer does: every "/" escaped as "\/"
// (spec §1.1). A "/" can only occur inside JSON strings, so the replace is safe.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-API-Schemas", "/v2-beta/schemas")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(strings.ReplaceAll(string(b), "/", `\/`)))
}
