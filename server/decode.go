package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/spoolhq/spool/rollout"
)

// Media types the append route reads.
const (
	mediaJSON   = "application/json"
	mediaNDJSON = "application/x-ndjson"
)

// ndjsonAliases are other names clients use for newline-delimited JSON.
var ndjsonAliases = map[string]bool{
	mediaNDJSON:             true,
	"application/jsonl":     true,
	"application/jsonlines": true,
	"application/x-jsonl":   true,
}

// appendBody is a decoded body of POST /v1/threads/{id}/items: either items
// (a JSON body, encoded into lines by the manager) or complete lines (an
// NDJSON body, kept verbatim). Exactly one of the two is non-empty.
type appendBody struct {
	items []rollout.Item
	lines [][]byte
	// lineNumbers holds, for each of lines, its 1-based line number in
	// the body, blank lines counted: what the client's editor shows.
	lineNumbers []int
}

// isNDJSON reports whether contentType names newline-delimited JSON. JSON
// is application/json or any +json type; an empty Content-Type is read as
// JSON. Anything else, the types a browser may send cross-site without
// asking first included, is a 415 error (checkContentType lets curl -d's
// form type through from non-browsers before this is asked).
func isNDJSON(contentType string, ndjsonRoute bool) (bool, error) {
	if contentType == "" {
		return false, nil
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"cannot parse Content-Type %q", contentType)
	}
	switch {
	case mediaType == mediaJSON, strings.HasSuffix(mediaType, "+json"):
		return false, nil
	case ndjsonAliases[mediaType]:
		return true, nil
	case ndjsonRoute:
		return false, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"Content-Type %q is not %s or %s (with curl: --json or -H 'Content-Type: application/json')",
			mediaType, mediaJSON, mediaNDJSON)
	default:
		return false, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"Content-Type %q is not %s (with curl: --json or -H 'Content-Type: application/json')",
			mediaType, mediaJSON)
	}
}

// decodeAppend decodes the body of an append request, data, in place (it
// compacts payloads within data, and the items it returns point into it).
// A JSON body is either {"items":[item,...]} or a single item
// {"type":...,"payload":...,"timestamp":...}; an NDJSON body holds one
// complete rollout line per line (blank lines are skipped). It never
// panics: it returns at least one item or line, or an *Error.
func decodeAppend(ndjson bool, data []byte) (appendBody, error) {
	if ndjson {
		lines, numbers, err := decodeNDJSON(data)
		return appendBody{lines: lines, lineNumbers: numbers}, err
	}
	items, err := decodeItems(data)
	return appendBody{items: items}, err
}

// validObject returns data without surrounding space after checking that
// it is one JSON object in UTF-8.
func validObject(data []byte) ([]byte, error) {
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return nil, errorf(http.StatusBadRequest, CodeInvalidJSON, "request body is empty")
	case !utf8.Valid(trimmed):
		return nil, errorf(http.StatusBadRequest, CodeInvalidJSON, "request body is not valid UTF-8")
	case !json.Valid(trimmed):
		return nil, errorf(http.StatusBadRequest, CodeInvalidJSON, "request body is not valid JSON")
	case trimmed[0] != '{':
		return nil, errorf(http.StatusBadRequest, CodeInvalidJSON, "request body is not a JSON object")
	}
	return trimmed, nil
}

// decodeItems decodes a JSON append body into items.
func decodeItems(data []byte) ([]rollout.Item, error) {
	obj, err := validObject(data)
	if err != nil {
		return nil, err
	}
	var (
		rawItems []byte
		members  int
	)
	err = eachMember(obj, func(key, value []byte) error {
		members++
		if name, err := clientString(key); err == nil && name == "items" {
			rawItems = value
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rawItems == nil {
		item, err := decodeItem(obj, 0)
		if err != nil {
			return nil, err
		}
		return []rollout.Item{item}, nil
	}
	if members != 1 {
		return nil, errorf(http.StatusBadRequest, CodeInvalidJSON,
			`a batch body has only the member "items"`)
	}
	if rawItems[0] != '[' {
		return nil, errorf(http.StatusBadRequest, CodeInvalidJSON, `"items" must be an array of item objects`)
	}
	var items []rollout.Item
	err = eachElement(rawItems, func(i int, value []byte) error {
		item, err := decodeItem(value, i)
		items = append(items, item)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, errorf(http.StatusBadRequest, CodeInvalidArgument, `"items" is empty`)
	}
	return items, nil
}

// decodeItem decodes one item object, valid JSON. The payload is compacted
// in place (so a pretty-printed request still makes a one-line rollout
// entry) but otherwise kept byte for byte, escapes included; type and
// timestamp must be text (see clientString), and no member may be given
// twice. Unknown item types are accepted.
func decodeItem(obj []byte, index int) (rollout.Item, error) {
	if obj[0] != '{' {
		return rollout.Item{}, errorf(http.StatusBadRequest, CodeInvalidItem, "item %d: want an object", index)
	}
	var (
		item                rollout.Item
		hasType, hasPayload bool
		seen                = make(map[string]bool, 3)
	)
	err := eachMember(obj, func(key, value []byte) error {
		name, err := clientString(key)
		if err != nil {
			return errorf(http.StatusBadRequest, CodeInvalidItem, "item %d: member name %v", index, err)
		}
		// encoding/json would keep the last of two; a member given twice
		// is refused, as in every other body.
		if seen[name] {
			return errorf(http.StatusBadRequest, CodeInvalidItem, "item %d: %q given twice", index, name)
		}
		seen[name] = true
		switch name {
		case "type":
			if item.Type, err = clientString(value); err != nil {
				return errorf(http.StatusBadRequest, CodeInvalidItem, `item %d: "type" %v`, index, err)
			}
			hasType = item.Type != ""
		case "timestamp":
			if string(value) == "null" {
				return nil
			}
			if item.Timestamp, err = clientString(value); err != nil {
				return errorf(http.StatusBadRequest, CodeInvalidItem, `item %d: "timestamp" %v`, index, err)
			}
		case "payload":
			if value[0] != '{' {
				return errorf(http.StatusBadRequest, CodeInvalidItem, `item %d: "payload" must be a JSON object`, index)
			}
			item.Payload = compactInPlace(value)
			hasPayload = true
		default:
			return errorf(http.StatusBadRequest, CodeInvalidItem,
				"item %d: want an object with only timestamp, type and payload, not %s", index, key)
		}
		return nil
	})
	if err != nil {
		return rollout.Item{}, err
	}
	if !hasType {
		return rollout.Item{}, errorf(http.StatusBadRequest, CodeInvalidItem, `item %d: missing "type"`, index)
	}
	if !hasPayload {
		return rollout.Item{}, errorf(http.StatusBadRequest, CodeInvalidItem, `item %d: "payload" must be a JSON object`, index)
	}
	return item, nil
}

// decodeObject decodes data, which must hold exactly one JSON object whose
// strings are all text (see clientString), into v.
func decodeObject(data []byte, v any) error {
	trimmed, err := validObject(data)
	if err != nil {
		return err
	}
	if err := checkStrings(trimmed); err != nil {
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "a string of the request body %v", err)
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return errorf(http.StatusBadRequest, CodeInvalidArgument, "field %q: want %s", typeErr.Field, typeErr.Type)
		}
		return errorf(http.StatusBadRequest, CodeInvalidJSON, "%v", err)
	}
	return nil
}

// decodeStrictObject is decodeObject for request bodies with a fixed set of
// fields: an unknown field is an invalid_argument error naming it. An empty
// body decodes as {} when allowEmpty is set.
func decodeStrictObject(data []byte, v any, allowEmpty bool) error {
	if allowEmpty && len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := decodeObject(data, new(struct{})); err != nil {
		return err
	}
	trimmed := bytes.TrimSpace(data)
	if err := exactMembers(trimmed, reflect.TypeOf(v)); err != nil {
		return err
	}
	// exactMembers refused every unknown field, at every depth, so a plain
	// Unmarshal is as strict as a Decoder with DisallowUnknownFields, and
	// holds no copy of the body (the Decoder buffered it whole, growing a
	// buffer to about four times its size).
	if err := json.Unmarshal(trimmed, v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return errorf(http.StatusBadRequest, CodeInvalidArgument, "field %q: want %s", typeErr.Field, typeErr.Type)
		}
		return errorf(http.StatusBadRequest, CodeInvalidArgument, "%v", err)
	}
	return nil
}

// decodeNDJSON splits an NDJSON body into lines, each of which must be one
// JSON object. Lines are returned without their newline and otherwise
// verbatim (a CR before the newline is dropped); the manager checks the
// envelope; only its top-level "type" and "timestamp" must be text (see
// clientString), the payload passes verbatim. Blank lines are skipped, as
// Codex skips them. numbers holds each line's 1-based number in data.
func decodeNDJSON(data []byte) (lines [][]byte, numbers []int, err error) {
	number := 0
	for len(data) > 0 {
		number++
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		trimmed := bytes.TrimSpace(line)
		if len(trimmed) == 0 {
			continue
		}
		if !utf8.Valid(line) {
			return nil, nil, errorf(http.StatusBadRequest, CodeInvalidJSON, "line %d is not valid UTF-8", number)
		}
		if !json.Valid(trimmed) {
			return nil, nil, errorf(http.StatusBadRequest, CodeInvalidJSON, "line %d is not valid JSON", number)
		}
		if trimmed[0] != '{' {
			return nil, nil, errorf(http.StatusBadRequest, CodeInvalidJSON, "line %d is not a JSON object", number)
		}
		var seen []string // a line's few top-level members
		err = eachMember(trimmed, func(key, value []byte) error {
			name, err := clientString(key)
			if err != nil {
				return errorf(http.StatusBadRequest, CodeInvalidItem, "line %d: member name %v", number, err)
			}
			// Readers of a line with a member twice may take either:
			// spool's the last, another the first, or refuse the line.
			if slices.Contains(seen, name) {
				return errorf(http.StatusBadRequest, CodeInvalidItem, "line %d: %q given twice", number, name)
			}
			seen = append(seen, name)
			if name == "type" || (name == "timestamp" && string(value) != "null") {
				if _, err := clientString(value); err != nil {
					return errorf(http.StatusBadRequest, CodeInvalidItem, "line %d: %q %v", number, name, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		lines = append(lines, line)
		numbers = append(numbers, number)
	}
	if len(lines) == 0 {
		return nil, nil, errorf(http.StatusBadRequest, CodeInvalidArgument, "request body holds no lines")
	}
	return lines, numbers, nil
}

// exactMembers refuses a member of obj, a valid JSON object, named twice
// or named other than exactly as a field of t (a struct, or a pointer to
// one), and the same at every depth, in each object that decodes into a
// struct (a field's, an array element's, a map value's):
// encoding/json matches names regardless of case and keeps the last of
// two, so {"NAME": …} would rename and {"before_user_message": 1,
// "Before_User_Message": 0} fork before 0, where unknown fields are
// refused. A type that decodes itself (json.Unmarshaler) is not looked
// into.
func exactMembers(obj []byte, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if len(obj) == 0 || reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch {
	case (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) && obj[0] == '[':
		return eachElement(obj, func(_ int, elem []byte) error { return exactMembers(elem, t.Elem()) })
	case t.Kind() == reflect.Map && obj[0] == '{':
		return eachMember(obj, func(_, value []byte) error { return exactMembers(value, t.Elem()) })
	case t.Kind() != reflect.Struct || obj[0] != '{':
		return nil
	}
	fields := make(map[string]reflect.Type, t.NumField())
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	seen := make(map[string]bool, len(fields))
	return eachMember(obj, func(key, value []byte) error {
		var name string
		if err := json.Unmarshal(key, &name); err != nil {
			return errorf(http.StatusBadRequest, CodeInvalidJSON, "a member name: %v", err)
		}
		ft, ok := fields[name]
		switch {
		case !ok:
			return errorf(http.StatusBadRequest, CodeInvalidArgument, "unknown field %q (names are matched exactly)", name)
		case seen[name]:
			return errorf(http.StatusBadRequest, CodeInvalidArgument, "field %q given twice", name)
		}
		seen[name] = true
		return exactMembers(value, ft)
	})
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
