package lockfile

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// childEnv names the lock file a re-executed test binary should hold.
const childEnv = "LOCKFILE_TEST_CHILD_LOCK"

func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		os.Exit(holdForParent(path))
	}
	os.Exit(m.Run())
}

// holdForParent takes the lock, says "ready" on stdout, and holds the lock
// until the parent closes our stdin.
func holdForParent(path string) int {
	l, err := Acquire(path)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // EOF when the parent closes it
	if err := l.Release(); err != nil {
		return 1
	}
	return 0
}

func TestAcquireInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	first, err := Acquire(path)
	if err != nil {
		t.Fatalf("first Acquire: %v", err)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wantPrefix := fmt.Sprintf("%s (pid %d) on ", filepath.Base(os.Args[0]), os.Getpid())
	if !strings.HasPrefix(string(content), wantPrefix) || !strings.Contains(string(content), " since ") {
		t.Fatalf("lock content = %q, want %q... since ...", content, wantPrefix)
	}

	_, err = Acquire(path)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Acquire error = %v, want ErrLocked", err)
	}
	var held *HeldError
	if !errors.As(err, &held) {
		t.Fatalf("second Acquire error %T is not *HeldError", err)
	}
	if held.Holder != strings.TrimSpace(string(content)) {
		t.Fatalf("holder = %q, want %q", held.Holder, strings.TrimSpace(string(content)))
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), wantPrefix) {
		t.Fatalf("error %q does not name the path and holder", err)
	}

	if err := first.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := first.Release(); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	again, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	if err := again.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

// TestAcquireNamesThePathOnce: a lock that cannot be opened (its
// directory is gone, or not the user's) names its path once: the open's
// *PathError names it already ("open lock P: open P: ..." before).
func TestAcquireNamesThePathOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", FileName)
	_, err := Acquire(path)
	if !errors.Is(err, os.ErrNotExist) || strings.Count(err.Error(), path) != 1 {
		t.Fatalf("Acquire in a missing directory = %v; want ErrNotExist, naming %s once", err, path)
	}
}

func TestAcquireHeldByChildProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("child said %q (%v), want ready", line, err)
	}

	_, err = Acquire(path)
	var held *HeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrLocked) {
		t.Fatalf("Acquire while child holds the lock: %v, want *HeldError wrapping ErrLocked", err)
	}
	wantPrefix := fmt.Sprintf("%s (pid %d) on ", filepath.Base(os.Args[0]), cmd.Process.Pid)
	if !strings.HasPrefix(held.Holder, wantPrefix) {
		t.Fatalf("holder = %q, want prefix %q", held.Holder, wantPrefix)
	}

	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	l, err := Acquire(path)
	if err != nil {
		t.Fatalf("Acquire after the child exited: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
}

// TestDiscardRemovesOnlyWhatItCreated: Discard removes a lock file its
// Acquire created and keeps one that was there before; either way the
// lock is free again.
func TestDiscardRemovesOnlyWhatItCreated(t *testing.T) {
	for _, c := range []struct {
		name     string
		existed  bool
		wantFile bool
	}{
		{"created", false, false},
		{"there before", true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			if c.existed {
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			l, err := Acquire(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Discard(); err != nil {
				t.Fatalf("Discard: %v", err)
			}
			if _, err := os.Stat(path); (err == nil) != c.wantFile {
				t.Fatalf("after Discard, stat %s: %v; want the file there: %v", path, err, c.wantFile)
			}
			again, err := Acquire(path)
			if err != nil {
				t.Fatalf("Acquire after Discard: %v", err)
			}
			again.Release()
		})
	}
}
