package main

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// sizeUnits are the units parseSize accepts, longest suffixes first within
// each family so that "MiB" is not read as "B".
var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"b", 1},
}

// parseSize parses a positive byte size: a whole number, optionally
// followed by a unit (B, KB, MB, GB, TB in powers of 1000; KiB, MiB, GiB,
// TiB in powers of 1024; any case, space allowed before the unit).
func parseSize(s string) (int64, error) {
	text := strings.ToLower(strings.TrimSpace(s))
	factor := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(text, u.suffix) {
			text, factor = strings.TrimSpace(strings.TrimSuffix(text, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n < 1 || n > math.MaxInt64/factor {
		return 0, fmt.Errorf("%q: want a positive size such as 1048576, 64KiB, 64MiB or 1GB", s)
	}
	return n * factor, nil
}

// splitList splits a comma-separated flag value, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// checkOrigin checks that origin is a web origin as browsers send it:
// scheme://host[:port], nothing more. "*" and "null" are refused: either
// would let any page read and write every thread.
func checkOrigin(origin string) error {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("origin %q: want scheme://host[:port], such as https://app.example", origin)
	}
	return nil
}

// isLoopback reports whether addr, a listener's address, is a loopback
// address (127.0.0.0/8 or ::1).
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

// shownAddr is the address the listening line gives for a listener bound
// to bound after -addr asked: the host as asked (0.0.0.0 stays 0.0.0.0,
// where the listener reports the dual-stack [::]; a name stays a name) and
// the port bound (the one port 0 picked).
func shownAddr(asked string, bound net.Addr) string {
	host, _, err := net.SplitHostPort(asked)
	tcp, ok := bound.(*net.TCPAddr)
	if err != nil || !ok {
		return bound.String()
	}
	return net.JoinHostPort(host, strconv.Itoa(tcp.Port))
}
