package server

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file reads JSON that json.Valid has already accepted, in place: it
// finds members and elements as sub-slices of the request body instead of
// copying them, so a large payload exists once in memory.

// Errors of clientString. Strings spool parses itself (ids, names, cwd,
// item types, timestamps) must be text: no NUL, no lone surrogate escape
// (which encoding/json would silently turn into U+FFFD).
var (
	errNUL           = errors.New("contains a NUL character")
	errLoneSurrogate = errors.New("contains an unpaired surrogate escape")
	errNotString     = errors.New("is not a string")
)

// skipSpace returns the index of the first non-space byte at or after i.
func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string whose opening quote is
// at data[i].
func skipString(data []byte, i int) int {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index just past the value that starts at data[i].
func skipValue(data []byte, i int) int {
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = skipString(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default: // number, true, false, null
		for i < len(data) {
			switch data[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// eachMember calls fn with the raw key token and the raw value of every
// member of obj, a valid JSON object without surrounding space.
func eachMember(obj []byte, fn func(key, value []byte) error) error {
	i := skipSpace(obj, 1)
	for i < len(obj) && obj[i] != '}' {
		keyEnd := skipString(obj, i)
		key := obj[i:keyEnd]
		i = skipSpace(obj, keyEnd) + 1 // the colon
		i = skipSpace(obj, i)
		valueEnd := skipValue(obj, i)
		if err := fn(key, obj[i:valueEnd]); err != nil {
			return err
		}
		i = skipSpace(obj, valueEnd)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
	return nil
}

// eachElement calls fn with the index and raw value of every element of
// arr, a valid JSON array without surrounding space.
func eachElement(arr []byte, fn func(index int, value []byte) error) error {
	i := skipSpace(arr, 1)
	for index := 0; i < len(arr) && arr[i] != ']'; index++ {
		end := skipValue(arr, i)
		if err := fn(index, arr[i:end]); err != nil {
			return err
		}
		i = skipSpace(arr, end)
		if i < len(arr) && arr[i] == ',' {
			i = skipSpace(arr, i+1)
		}
	}
	return nil
}

// compactInPlace removes the insignificant space of value, valid JSON,
// by moving bytes down within value itself, and returns the shortened
// slice. Strings are copied byte for byte.
func compactInPlace(value []byte) []byte {
	w := 0
	for r := 0; r < len(value); {
		c := value[r]
		switch c {
		case ' ', '\t', '\n', '\r':
			r++
		case '"':
			end := skipString(value, r)
			w += copy(value[w:], value[r:end])
			r = end
		default:
			value[w] = c
			w++
			r++
		}
	}
	return value[:w]
}

// checkEscapes reports whether the raw string token tok (quotes included)
// escapes a NUL or a lone surrogate.
func checkEscapes(tok []byte) error {
	var pendingHigh bool
	for i := 1; i < len(tok)-1; i++ {
		if tok[i] != '\\' {
			if pendingHigh {
				return errLoneSurrogate
			}
			continue
		}
		i++
		if tok[i] != 'u' {
			if pendingHigh {
				return errLoneSurrogate
			}
			continue
		}
		code, _ := strconv.ParseUint(string(tok[i+1:i+5]), 16, 32)
		i += 4
		r := rune(code)
		switch {
		case r == 0:
			return errNUL
		case utf16.IsSurrogate(r) && r < 0xdc00: // high
			if pendingHigh {
				return errLoneSurrogate
			}
			pendingHigh = true
		case utf16.IsSurrogate(r): // low
			if !pendingHigh {
				return errLoneSurrogate
			}
			pendingHigh = false
		default:
			if pendingHigh {
				return errLoneSurrogate
			}
		}
	}
	if pendingHigh {
		return errLoneSurrogate
	}
	return nil
}

// clientString decodes the raw JSON value tok, which must be a string whose
// text holds no NUL, no lone surrogate and only valid UTF-8.
func clientString(tok []byte) (string, error) {
	if len(tok) < 2 || tok[0] != '"' {
		return "", errNotString
	}
	if err := checkEscapes(tok); err != nil {
		return "", err
	}
	if !utf8.Valid(tok) {
		return "", errInvalidUTF8
	}
	var s string
	if err := json.Unmarshal(tok, &s); err != nil {
		return "", err
	}
	return s, nil
}

// checkStrings applies clientString's rule to every string, keys included,
// of data, valid JSON.
func checkStrings(data []byte) error {
	for i := 0; i < len(data); {
		if data[i] != '"' {
			i++
			continue
		}
		end := skipString(data, i)
		if err := checkEscapes(data[i:end]); err != nil {
			return err
		}
		i = end
	}
	if !utf8.Valid(data) {
		return errInvalidUTF8
	}
	return nil
}
