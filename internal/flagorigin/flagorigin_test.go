package flagorigin_test

import (
	"flag"
	"io"
	"testing"

	"github.com/spoolhq/spool/internal/flagorigin"
)

func TestNamer(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"typed", []string{"-sync", "x"}, nil, "-sync"},
		{"typed beats the variable", []string{"-sync", "x"}, map[string]string{"SPOOL_SYNC": "y"}, "-sync"},
		{"from the variable", nil, map[string]string{"SPOOL_SYNC": "y"}, "SPOOL_SYNC"},
		{"an empty variable is not set", nil, map[string]string{"SPOOL_SYNC": ""}, "-sync"},
		{"neither: the default", nil, nil, "-sync"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.String("sync", "always", "")
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			from := flagorigin.Namer(fs, "-", func(k string) string { return tt.env[k] })
			if got := from("sync", "SPOOL_SYNC"); got != tt.want {
				t.Errorf("from(sync) = %q, want %q", got, tt.want)
			}
		})
	}
}
