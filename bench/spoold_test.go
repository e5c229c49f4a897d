//go:build distributed

package bench

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spoolhq/spool/client"
	"github.com/spoolhq/spool/internal/spooldtest"
)

// buildSpoold builds cmd/spoold into a directory of tb's and returns the
// binary's path.
func buildSpoold(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "spoold")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/spoolhq/spool/cmd/spoold").CombinedOutput(); err != nil {
		tb.Fatalf("go build spoold: %v\n%s", err, out)
	}
	return bin
}

// spooldNode is a running spoold process.
type spooldNode struct {
	pid    int
	client *client.Client
}

// benchHTTP is the HTTP client of every benchmark client: enough idle
// connections per node for 64 concurrent writers, so none is reopened.
var benchHTTP = &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 128}}

// startSpoold runs bin with args on a loopback port and waits for its
// "listening" line; the process is stopped (SIGTERM, then waited for) when
// tb ends.
func startSpoold(tb testing.TB, bin string, env []string, args ...string) *spooldNode {
	tb.Helper()
	env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + tb.TempDir()}, env...)
	p := spooldtest.Start(tb, bin, spooldtest.Options{Args: args, Env: env})
	tb.Cleanup(func() { // before Start's own, which kills
		p.Cmd.Process.Signal(syscall.SIGTERM)
		<-p.Done()
	})
	c, err := client.New(p.URL, client.WithHTTPClient(benchHTTP))
	if err != nil {
		tb.Fatal(err)
	}
	return &spooldNode{pid: p.Cmd.Process.Pid, client: c}
}

// cpuTicks returns the user+system CPU time, in clock ticks, of the
// processes pids and of every child of the processes parents (PostgreSQL's
// backends and workers are the postmaster's children). A process that is
// gone counts 0.
func cpuTicks(pids []int, parents []int) int64 {
	var total int64
	want := make(map[int]bool)
	for _, p := range pids {
		want[p] = true
	}
	isParent := make(map[int]bool)
	for _, p := range parents {
		isParent[p] = true
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command (which may hold spaces), from field 3.
		_, rest, ok := strings.Cut(string(stat), ") ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if !want[pid] && !isParent[ppid] {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		total += utime + stime
	}
	return total
}

// clockTick is the length of a /proc clock tick (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// selfCPU returns this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage returns the 1-minute load average (0 if unreadable).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
