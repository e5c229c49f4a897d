package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"

	"github.com/spoolhq/spool/client"
)

// callWithID calls method m of c with ctx, id and zero values for its
// other parameters, and returns the error it returns or, for a method
// that returns an iterator, the first error the iterator yields.
func callWithID(ctx context.Context, c *client.Client, m reflect.Method, id string) error {
	ft := m.Type
	in := []reflect.Value{reflect.ValueOf(c), reflect.ValueOf(ctx), reflect.ValueOf(id)}
	for i := len(in); i < ft.NumIn(); i++ {
		in = append(in, reflect.Zero(ft.In(i)))
	}
	var out []reflect.Value
	if ft.IsVariadic() {
		out = m.Func.CallSlice(in)
	} else {
		out = m.Func.Call(in)
	}
	errType := reflect.TypeFor[error]()
	if last := out[len(out)-1]; last.Type() == errType {
		err, _ := last.Interface().(error)
		return err
	}
	// An iter.Seq2[T, error]: range over it until an error comes.
	seq := out[0]
	var got error
	yield := reflect.MakeFunc(seq.Type().In(0), func(args []reflect.Value) []reflect.Value {
		got, _ = args[1].Interface().(error)
		return []reflect.Value{reflect.ValueOf(got == nil)}
	})
	seq.Call([]reflect.Value{yield})
	return got
}

// TestEmptyIDIsRefusedBeforeAnyRequest calls every method whose first
// argument after the context is a thread id with an empty and a blank id:
// each fails with ErrInvalidID, and no request reaches the server (an
// empty id would otherwise ask for another route, GET /v1/threads/).
func TestEmptyIDIsRefusedBeforeAnyRequest(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request sent: %s %s", r.Method, r.URL.Path)
		http.Error(w, "no request expected", http.StatusTeapot)
	}))
	t.Cleanup(ts.Close)
	c, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctxType, stringType := reflect.TypeFor[context.Context](), reflect.TypeFor[string]()
	ct := reflect.TypeOf(c)
	tested := map[string]bool{}
	for i := range ct.NumMethod() {
		m := ct.Method(i)
		if m.Type.NumIn() < 3 || m.Type.In(1) != ctxType || m.Type.In(2) != stringType {
			continue // not a call about one thread
		}
		tested[m.Name] = true
		for _, id := range []string{"", " \t"} {
			t.Run(m.Name+"/"+strconv.Quote(id), func(t *testing.T) {
				if err := callWithID(t.Context(), c, m, id); !errors.Is(err, client.ErrInvalidID) {
					t.Fatalf("%s(%q) = %v, want ErrInvalidID", m.Name, id, err)
				}
			})
		}
	}
	// The selection above must find the methods it is about.
	for _, name := range []string{"Get", "Delete", "Append", "Items", "Follow", "Turns", "FullTurns", "ReadTurnByID", "Fork", "Tree"} {
		if !tested[name] {
			t.Errorf("method %s was not tested", name)
		}
	}
}
