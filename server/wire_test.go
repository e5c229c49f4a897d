package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/spoolhq/spool/api"
	"github.com/spoolhq/spool/manager"
)

// TestWriteJSONRefusesDomainTypes checks that a handler that encodes a
// manager value instead of api's answers 500, not a body in Go field
// names (manager's types have no JSON tags), and that api's types pass.
func TestWriteJSONRefusesDomainTypes(t *testing.T) {
	th := manager.Thread{ID: "x"}
	for _, tt := range []struct {
		name string
		v    any
		want int
	}{
		{"manager.Thread", th, http.StatusInternalServerError},
		{"*manager.Thread", &th, http.StatusInternalServerError},
		{"[]manager.Relative", []manager.Relative{{ID: "x"}}, http.StatusInternalServerError},
		{"manager.AppendResult", manager.AppendResult{Thread: th}, http.StatusInternalServerError},
		{"map of manager.Thread", map[string]manager.Thread{"root": th}, http.StatusInternalServerError},
		{"api.Thread", wireThread(th), http.StatusOK},
		{"api.Tree", api.Tree{Root: wireThread(th)}, http.StatusOK},
		{"map of strings", map[string]string{"status": "ok"}, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			writeJSON(rec, http.StatusOK, tt.v)
			if rec.Code != tt.want {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.want, rec.Body)
			}
		})
	}
}
