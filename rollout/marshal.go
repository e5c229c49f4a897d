package rollout

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"
)

// appendJSON appends v as encoding/json's Marshal writes it, for the kinds
// of value a rendered turn's payloads hold: nil, a string, an int64, a map
// of them with string keys (in sorted order), a slice of such maps, an
// []any of them. It writes into dst, where Marshal builds in a buffer of
// its own and then copies: a turn's long texts are copied once.
func appendJSON(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case string:
		return appendMarshalledString(dst, v), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case map[string]any:
		return appendJSONObject(dst, v)
	case map[string]string:
		return appendJSONObject(dst, v)
	case []map[string]string:
		return appendJSONArray(dst, v)
	case []map[string]any:
		return appendJSONArray(dst, v)
	case []any:
		return appendJSONArray(dst, v)
	}
	return dst, fmt.Errorf("render: no encoding for a %T", v)
}

func appendJSONObject[V any](dst []byte, m map[string]V) ([]byte, error) {
	if m == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '{')
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(appendMarshalledString(dst, k), ':')
		var err error
		if dst, err = appendJSON(dst, any(m[k])); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func appendJSONArray[E any](dst []byte, s []E) ([]byte, error) {
	if s == nil {
		return append(dst, "null"...), nil
	}
	dst = append(dst, '[')
	for i, e := range s {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = appendJSON(dst, any(e)); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

// appendMarshalledString appends s as a JSON string as encoding/json's
// Marshal writes it: with <, > and & escaped for HTML, U+2028 and U+2029
// escaped, and each byte of invalid UTF-8 as U+FFFD (appendString, the
// envelope's, escapes only what JSON requires).
func appendMarshalledString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case c == '\u2028' || c == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
