package testbin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Instruction is one Dockerfile instruction with its continuation lines joined.
type Instruction struct{ Cmd, Args string }

// ReadDockerfile returns the instructions of the repository's Dockerfile.
func ReadDockerfile(t testing.TB) []Instruction {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Root(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []Instruction
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") || line == "" && cur == "" {
			continue
		}
		cur += " " + strings.TrimSuffix(line, "\\")
		if strings.HasSuffix(line, "\\") {
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur), " ")
		out = append(out, Instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur = ""
	}
	return out
}

// BuildCommand returns the Dockerfile's go build command line as arguments,
// from its CGO_ENABLED=0 on.
func BuildCommand(t testing.TB) []string {
	t.Helper()
	for _, in := range ReadDockerfile(t) {
		if in.Cmd != "RUN" || !strings.Contains(in.Args, "go build") {
			continue
		}
		_, line, _ := strings.Cut(in.Args, "CGO_ENABLED=0")
		return SplitWords("CGO_ENABLED=0" + line)
	}
	t.Fatal("no go build in the Dockerfile")
	return nil
}

// SplitWords splits a shell line on spaces outside double quotes, dropping the quotes.
func SplitWords(line string) []string {
	var args []string
	var cur strings.Builder
	quoted := false
	for _, r := range line {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				args = append(args, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		args = append(args, cur.String())
	}
	return args
}
