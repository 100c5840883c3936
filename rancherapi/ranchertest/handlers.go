package ranchertest

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

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
	if withSecret { // readOnCreateOnly (docs/rancher-api.md#registry-credentials)
		m["secretValue"] = c.SecretValue
	}
	if h.version == "v1" { // v2-beta ≥ Rancher 1.5.4 has no email field (docs/rancher-api.md#email)
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

// page applies Cattle's limit/marker pagination (docs/rancher-api.md#pagination) and writes the envelope.
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
		// serverAddress lives in a JSON blob and cannot be filtered: ignored (docs/rancher-api.md#pagination).
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
		if strings.EqualFold(r.ServerAddress, addr) { // raw, case-insensitive (docs/rancher-api.md#duplicate-addresses)
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

// checkCredentialFields applies Cattle's field validation (docs/rancher-api.md#registry-credentials, #errors, #updates).
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
	// Partial update; registryId and unknown fields are silently dropped (docs/rancher-api.md#updates).
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
// (docs/rancher-api.md#urls-and-scopes). A "/" can only occur inside JSON strings, so the replace is safe.
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
