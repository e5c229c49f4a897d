package store

import (
	"testing"
)

func TestTakeState(t *testing.T) {
	ctx := t.Context()
	st := openTest(t)
	if _, ok, err := st.TakeState(ctx, "clean_close"); err != nil || ok {
		t.Fatalf("take from an empty state = ok %v, %v; want none", ok, err)
	}
	for _, v := range []string{"first", "second"} {
		if err := st.PutState(ctx, "clean_close", v); err != nil {
			t.Fatal(err)
		}
	}
	got, ok, err := st.TakeState(ctx, "clean_close")
	if err != nil || !ok || got != "second" {
		t.Fatalf("take = %q, ok %v, %v; want the last value put", got, ok, err)
	}
	if _, ok, err := st.TakeState(ctx, "clean_close"); err != nil || ok {
		t.Fatalf("second take = ok %v, %v; want none: a take removes", ok, err)
	}
}
