package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// procStatus reads the memory lines (VmRSS, VmHWM, RssAnon, RssFile), in kB,
// of /proc/<pid>/status.
func procStatus(b testing.TB, pid int) map[string]int64 {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	kb := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		name, rest, _ := strings.Cut(sc.Text(), ":")
		if f := strings.Fields(rest); len(f) == 2 && f[1] == "kB" {
			kb[name], _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	if kb["VmRSS"] == 0 || kb["VmHWM"] == 0 {
		b.Fatalf("no VmRSS/VmHWM in /proc/%d/status", pid)
	}
	return kb
}
