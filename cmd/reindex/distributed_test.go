//go:build distributed

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/spoolhq/spool/internal/disttest"
	"github.com/spoolhq/spool/objstore"
	"github.com/spoolhq/spool/pgstore"
)

// TestDistributedVerifyAndCollect: reindex --pg --verify exits 0 on a
// clean database and 1 naming the thread when a segment's object is gone,
// deleting nothing; --collect deletes an unnamed object past the grace
// period and nothing else.
func TestDistributedVerifyAndCollect(t *testing.T) {
	dsn, s3 := disttest.DSN(t), disttest.S3Config(t)
	t.Setenv("SPOOL_S3_ACCESS_KEY", s3.AccessKey)
	t.Setenv("SPOOL_S3_SECRET_KEY", s3.SecretKey)
	bucket, err := objstore.OpenS3(t.Context(), s3)
	if err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.Open(t.Context(), dsn, pgstore.Options{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const id = "0195e7a0-0000-7000-8000-000000000001"
	meta := []byte(`{"timestamp":"2026-11-25T00:00:00.000Z","type":"session_meta","payload":{"id":"` + id + `"}}` + "\n")
	if _, err := st.Create(t.Context(), pgstore.NewThread{ID: id, Lines: meta}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Seal(t.Context(), id, 1); err != nil {
		t.Fatal(err)
	}
	run1 := func(args ...string) (int, string) {
		var out, errOut bytes.Buffer
		code := run(t.Context(), append([]string{"--pg", dsn, "--s3", s3.Endpoint, "--s3-bucket", s3.Bucket}, args...), &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := run1("--verify"); code != exitOK || !strings.Contains(out, "verify: 0 problems") {
		t.Fatalf("verify of a clean database: exit %d\n%s", code, out)
	}
	// Message rows that drifted from the bytes: --repair rebuilds them.
	if _, err := st.Append(t.Context(), id, []byte(`{"timestamp":"2026-11-25T00:00:01.000Z","type":"response_item","payload":{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}}`+"\n"), -1); err != nil {
		t.Fatal(err)
	}
	damage, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := damage.Exec(t.Context(), `DELETE FROM user_messages`); err != nil {
		t.Fatal(err)
	}
	damage.Close(t.Context())
	if code, out := run1("--verify"); code != exitDrift || !strings.Contains(out, "user messages") {
		t.Fatalf("verify with a lost message row: exit %d\n%s", code, out)
	}
	if code, out := run1("--repair"); code != exitOK || !strings.Contains(out, "repaired: "+id) {
		t.Fatalf("repair: exit %d\n%s", code, out)
	}
	if code, out := run1("--verify"); code != exitOK {
		t.Fatalf("verify after repair: exit %d\n%s", code, out)
	}
	if err := bucket.PutNew(t.Context(), "segments/"+id+"/orphan", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if code, out := run1("--collect"); code != exitOK || strings.Contains(out, "collected: ") {
		t.Fatalf("collect with the default grace took a young object: exit %d\n%s", code, out)
	}
	code, out := run1("--collect", "--grace", "0s", "--json")
	var rep distributedReport
	if err := json.Unmarshal([]byte(out), &rep); code != exitOK || err != nil || len(rep.Collected) != 1 || rep.Collected[0] != "segments/"+id+"/orphan" {
		t.Fatalf("collect: exit %d, %+v, %v\n%s", code, rep, err, out)
	}
	objects, err := bucket.List(t.Context(), "segments/")
	if err != nil || len(objects) != 1 {
		t.Fatalf("after collect: %v, %v; want the live segment only", objects, err)
	}
	if err := bucket.Delete(t.Context(), objects[0].Key); err != nil {
		t.Fatal(err)
	}
	if code, out := run1("--verify"); code != exitDrift || !strings.Contains(out, id) || !strings.Contains(out, "not found") {
		t.Fatalf("verify with a lost segment: exit %d\n%s", code, out)
	}
	if code, out := run1("--verify", "--full"); code != exitError || !strings.Contains(out, "--pg takes") {
		t.Fatalf("--pg --full: exit %d\n%s", code, out)
	}
}
