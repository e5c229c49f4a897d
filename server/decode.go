package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
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
}

// isNDJSON reports whether contentType names newline-delimited JSON. JSON
// is application/json or any +json type; an empty Content-Type, and
// curl's default for -d (application/x-www-form-urlencoded), are read as
// JSON too so that plain curl commands work. Anything else is an error.
func isNDJSON(contentType string) (bool, error) {
	if contentType == "" {
		return false, nil
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"cannot parse Content-Type %q", contentType)
	}
	switch {
	case mediaType == mediaJSON, strings.HasSuffix(mediaType, "+json"), mediaType == "application/x-www-form-urlencoded":
		return false, nil
	case ndjsonAliases[mediaType]:
		return true, nil
	default:
		return false, errorf(http.StatusUnsupportedMediaType, CodeUnsupportedMediaType,
			"Content-Type %q is not %s or %s", mediaType, mediaJSON, mediaNDJSON)
	}
}

// decodeAppend reads the body of an append request. A JSON body is either
// {"items":[item,...]} or a single item {"type":...,"payload":...,
// "timestamp":...}; an NDJSON body holds one complete rollout line per
// line (blank lines are skipped). It never panics: it returns at least one
// item or line, or an *Error (a *http.MaxBytesError passes through when the
// body was cut by the size limit).
func decodeAppend(ndjson bool, body io.Reader) (appendBody, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return appendBody{}, fmt.Errorf("read request body: %w", err)
	}
	if ndjson {
		lines, err := decodeNDJSON(data)
		return appendBody{lines: lines}, err
	}
	items, err := decodeItems(data)
	return appendBody{items: items}, err
}

// decodeItems decodes a JSON append body into items.
func decodeItems(data []byte) ([]rollout.Item, error) {
	var members map[string]json.RawMessage
	if err := decodeObject(data, &members); err != nil {
		return nil, err
	}
	raw, isBatch := members["items"]
	if !isBatch {
		item, err := decodeItem(data, 0)
		if err != nil {
			return nil, err
		}
		return []rollout.Item{item}, nil
	}
	if len(members) != 1 {
		return nil, errorf(http.StatusBadRequest, CodeInvalidJSON,
			`a batch body has only the member "items"`)
	}
	var rawItems []json.RawMessage
	if err := json.Unmarshal(raw, &rawItems); err != nil || rawItems == nil {
		return nil, errorf(http.StatusBadRequest, CodeInvalidJSON, `"items" must be an array of item objects`)
	}
	if len(rawItems) == 0 {
		return nil, errorf(http.StatusBadRequest, CodeInvalidArgument, `"items" is empty`)
	}
	items := make([]rollout.Item, 0, len(rawItems))
	for i, rawItem := range rawItems {
		item, err := decodeItem(rawItem, i)
		if err != nil {
			return nil, err
		}
		items = append(items, item)
	}
	return items, nil
}

// decodeItem decodes one item object. The payload is compacted (so a
// pretty-printed request still makes a one-line rollout entry) but
// otherwise kept byte for byte; unknown item types are accepted.
func decodeItem(data []byte, index int) (rollout.Item, error) {
	var fields struct {
		Timestamp *string         `json:"timestamp"`
		Type      *string         `json:"type"`
		Payload   json.RawMessage `json:"payload"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fields); err != nil {
		return rollout.Item{}, errorf(http.StatusBadRequest, CodeInvalidItem,
			"item %d: want an object with only timestamp, type and payload: %v", index, err)
	}
	if fields.Type == nil || *fields.Type == "" {
		return rollout.Item{}, errorf(http.StatusBadRequest, CodeInvalidItem, `item %d: missing "type"`, index)
	}
	payload := bytes.TrimSpace(fields.Payload)
	if len(payload) == 0 || payload[0] != '{' {
		return rollout.Item{}, errorf(http.StatusBadRequest, CodeInvalidItem, `item %d: "payload" must be a JSON object`, index)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, payload); err != nil {
		return rollout.Item{}, errorf(http.StatusBadRequest, CodeInvalidItem, "item %d: payload: %v", index, err)
	}
	item := rollout.Item{Type: *fields.Type, Payload: compact.Bytes()}
	if fields.Timestamp != nil {
		item.Timestamp = *fields.Timestamp
	}
	return item, nil
}

// decodeObject decodes data, which must hold exactly one JSON object, into v.
func decodeObject(data []byte, v any) error {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return errorf(http.StatusBadRequest, CodeInvalidJSON, "request body is empty")
	}
	if !json.Valid(trimmed) {
		return errorf(http.StatusBadRequest, CodeInvalidJSON, "request body is not valid JSON")
	}
	if trimmed[0] != '{' {
		return errorf(http.StatusBadRequest, CodeInvalidJSON, "request body is not a JSON object")
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
	if err := decodeObject(data, new(map[string]json.RawMessage)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
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
// envelope. Blank lines are skipped, as Codex skips them.
func decodeNDJSON(data []byte) ([][]byte, error) {
	var lines [][]byte
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
			return nil, errorf(http.StatusBadRequest, CodeInvalidJSON, "line %d is not valid UTF-8", number)
		}
		if !json.Valid(trimmed) {
			return nil, errorf(http.StatusBadRequest, CodeInvalidJSON, "line %d is not valid JSON", number)
		}
		if trimmed[0] != '{' {
			return nil, errorf(http.StatusBadRequest, CodeInvalidJSON, "line %d is not a JSON object", number)
		}
		lines = append(lines, line)
	}
	if len(lines) == 0 {
		return nil, errorf(http.StatusBadRequest, CodeInvalidArgument, "request body holds no lines")
	}
	return lines, nil
}
