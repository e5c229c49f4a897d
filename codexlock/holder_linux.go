package codexlock

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// holder returns the pid holding a flock on the file st describes, from
// /proc/locks, or 0.
func holder(st os.FileInfo) int {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	data, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0
	}
	ino := fmt.Sprint(sys.Ino)
	for _, line := range strings.Split(string(data), "\n") {
		// "1: FLOCK  ADVISORY  WRITE 4242 fe:01:1234 0 EOF"; a waiter has
		// "->" after the number and is not a holder.
		fields := strings.Fields(line)
		if len(fields) < 6 || fields[1] != "FLOCK" {
			continue
		}
		dev := strings.Split(fields[5], ":")
		if len(dev) != 3 || dev[2] != ino {
			continue
		}
		if pid, err := strconv.Atoi(fields[4]); err == nil {
			return pid
		}
	}
	return 0
}
