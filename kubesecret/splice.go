package kubesecret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// setEntry returns the Docker config raw with host's entry set to entry,
// editing the text in place: every member of "auths" whose key names host,
// however spelled ("https://host", "host/"), gets entry as its value, and
// nothing else changes by a byte — other hosts' entries, other members
// (credHelpers, HttpHeaders, …), key order, indentation. With no such member
// one keyed host is added at the end of auths; with no auths, an auths member
// at the end of the config; an empty raw becomes a config holding only the
// entry. raw that is not a JSON object, or whose auths is not one, is an
// error: what it holds cannot be kept.
func setEntry(raw []byte, host string, entry []byte) ([]byte, error) {
	key, err := json.Marshal(host)
	if err != nil {
		return nil, err
	}
	member := slices.Concat(key, []byte(":"), entry)
	if len(bytes.TrimSpace(raw)) == 0 {
		return slices.Concat([]byte(`{"auths":{`), member, []byte("}}")), nil
	}
	if !json.Valid(raw) {
		return nil, errors.New("not valid JSON")
	}
	start := skipSpace(raw, 0)
	if raw[start] != '{' {
		return nil, errors.New("not a JSON object")
	}
	top, topEnd := objectMembers(raw, start)
	i := slices.IndexFunc(top, func(m span) bool { return m.key == "auths" })
	if i < 0 {
		return insert(raw, topEnd, len(top) > 0, slices.Concat([]byte(`"auths":{`), member, []byte("}"))), nil
	}
	auths := top[i]
	if raw[auths.valStart] != '{' {
		return nil, errors.New(`its "auths" is not a JSON object`)
	}
	members, authsEnd := objectMembers(raw, auths.valStart)
	var spans []span
	for _, m := range members {
		if m.key == host || normalized(m.key) == host {
			spans = append(spans, m)
		}
	}
	if len(spans) == 0 {
		return insert(raw, authsEnd, len(members) > 0, member), nil
	}
	out := make([]byte, 0, len(raw)+len(entry))
	last := 0
	for _, m := range spans {
		out = append(out, raw[last:m.valStart]...)
		out = append(out, entry...)
		last = m.valEnd
	}
	return append(out, raw[last:]...), nil
}

// insert puts member before the closing brace at end, after a comma when the
// object has members already.
func insert(raw []byte, end int, comma bool, member []byte) []byte {
	out := make([]byte, 0, len(raw)+len(member)+1)
	out = append(out, raw[:end]...)
	if comma {
		out = append(out, ',')
	}
	out = append(out, member...)
	return append(out, raw[end:]...)
}

// span is one member of a JSON object: its decoded key and where its value
// starts and ends in the text.
type span struct {
	key              string
	valStart, valEnd int
}

// objectMembers returns the members of the object whose '{' is at raw[i],
// and the offset of its closing '}'. raw must be valid JSON.
func objectMembers(raw []byte, i int) ([]span, int) {
	var out []span
	i = skipSpace(raw, i+1)
	for raw[i] != '}' {
		keyEnd := skipValue(raw, i)
		var key string
		_ = json.Unmarshal(raw[i:keyEnd], &key)      // valid JSON: a string
		i = skipSpace(raw, skipSpace(raw, keyEnd)+1) // past ':'
		end := skipValue(raw, i)
		out = append(out, span{key: key, valStart: i, valEnd: end})
		i = skipSpace(raw, end)
		if raw[i] == ',' {
			i = skipSpace(raw, i+1)
		}
	}
	return out, i
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the offset just past the value that starts at raw[i]
// (valid JSON).
func skipValue(raw []byte, i int) int {
	switch raw[i] {
	case '"':
		for i++; raw[i] != '"'; i++ {
			if raw[i] == '\\' {
				i++
			}
		}
		return i + 1
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch raw[i] {
			case '"':
				i = skipValue(raw, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(raw) && !bytes.ContainsRune([]byte(",}] \t\r\n"), rune(raw[i])) {
		i++
	}
	return i
}

// entryOf is the auths entry of a: username, password and their auth
// encoding, as docker login writes it.
func entryOf(host string, a Auth) ([]byte, error) {
	b, err := json.Marshal(dockerAuth{Username: a.Username, Password: a.Password, Auth: authOf(a)})
	if err != nil {
		return nil, fmt.Errorf("encode the entry for %s", host) // no %w: the value holds a password
	}
	return b, nil
}
