package eventtype

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// check is a schema in the form of a quick test that valid data passes
// without allocating. It covers the keywords of plain data schemas: type,
// enum and const of strings, booleans and null, properties, required,
// additionalProperties, items, minItems, maxItems, minLength, maxLength,
// pattern, minimum, maximum, exclusiveMinimum and exclusiveMaximum, and the
// annotations. A schema with any other keyword has no check, and its data
// goes to the library alone.
//
// The check is sound, not complete: when it passes, the library finds no
// violation; when it fails, or is unsure (a number such as 1.0 for an
// integer, a value equal to a bound only as float64), Validate asks the
// library, which lists the violations. So the answers are the library's.
type check struct {
	types      []string // nil: any; else "string", "number", "integer", ...
	enum       []any    // strings, booleans and nil; nil: no enum
	properties map[string]*check
	required   []string
	// additional checks the properties not in properties; nil: any.
	additional    *check
	noAdditional  bool // additionalProperties false
	items         *check
	minItems      int
	maxItems      int // -1: none
	minLength     int
	maxLength     int // -1: none
	pattern       *regexp.Regexp
	min, max      *bound
	exMin, exMax  *bound
	alwaysInvalid bool // the false schema
}

// bound is a numeric bound both as an exact integer, when it is one, and
// as a float64.
type bound struct {
	isInt bool
	i     int64
	f     float64
}

// annotations are keywords that never make data invalid here (format is
// an annotation in draft 2020-12 unless asserted, and Compile does not
// assert it).
var annotations = map[string]bool{
	"$schema": true, "$comment": true, "title": true, "description": true, "default": true,
	"examples": true, "deprecated": true, "readOnly": true, "writeOnly": true, "format": true,
}

// compileCheck returns the check of a schema document as the library's
// UnmarshalJSON reads it, or nil when the schema uses a keyword that
// checks do not cover.
func compileCheck(doc any) *check {
	switch doc := doc.(type) {
	case bool:
		return &check{alwaysInvalid: !doc, maxItems: -1, maxLength: -1}
	case map[string]any:
		c := &check{maxItems: -1, maxLength: -1}
		for k, v := range doc {
			if annotations[k] || strings.HasPrefix(k, "x-") {
				continue
			}
			if !c.set(k, v) {
				return nil
			}
		}
		return c
	}
	return nil
}

// set sets keyword k to v; false when k is not covered or v is not of a
// covered form.
func (c *check) set(k string, v any) bool {
	switch k {
	case "type":
		switch v := v.(type) {
		case string:
			c.types = []string{v}
		case []any:
			c.types = []string{}
			for _, t := range v {
				s, ok := t.(string)
				if !ok {
					return false
				}
				c.types = append(c.types, s)
			}
		default:
			return false
		}
	case "enum", "const":
		values, ok := v.([]any)
		if k == "const" {
			values, ok = []any{v}, true
		}
		if !ok {
			return false
		}
		for _, e := range values {
			switch e.(type) {
			case string, bool, nil:
			default:
				return false
			}
		}
		if c.enum != nil {
			return false // enum and const together: not covered
		}
		c.enum = append([]any{}, values...)
	case "properties":
		props, ok := v.(map[string]any)
		if !ok {
			return false
		}
		c.properties = map[string]*check{}
		for name, p := range props {
			pc := compileCheck(p)
			if pc == nil {
				return false
			}
			c.properties[name] = pc
		}
	case "required":
		names, ok := v.([]any)
		if !ok {
			return false
		}
		for _, n := range names {
			s, ok := n.(string)
			if !ok {
				return false
			}
			c.required = append(c.required, s)
		}
	case "additionalProperties":
		if b, ok := v.(bool); ok {
			c.noAdditional = !b
			return true
		}
		c.additional = compileCheck(v)
		return c.additional != nil
	case "items":
		c.items = compileCheck(v)
		return c.items != nil
	case "minItems", "maxItems", "minLength", "maxLength":
		n, ok := count(v)
		if !ok {
			return false
		}
		switch k {
		case "minItems":
			c.minItems = n
		case "maxItems":
			c.maxItems = n
		case "minLength":
			c.minLength = n
		case "maxLength":
			c.maxLength = n
		}
	case "pattern":
		s, ok := v.(string)
		if !ok {
			return false
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return false
		}
		c.pattern = re
	case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
		b := newBound(v)
		if b == nil {
			return false
		}
		switch k {
		case "minimum":
			c.min = b
		case "maximum":
			c.max = b
		case "exclusiveMinimum":
			c.exMin = b
		case "exclusiveMaximum":
			c.exMax = b
		}
	default:
		return false
	}
	return true
}

// count reads a non-negative integer keyword value.
func count(v any) (int, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(string(n))
	return i, err == nil && i >= 0
}

func newBound(v any) *bound {
	n, ok := v.(json.Number)
	if !ok {
		return nil
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return &bound{isInt: true, i: i, f: float64(i)}
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return nil
	}
	return &bound{f: f}
}

// cmp compares the number n with b: -1, 0 or 1, and whether the answer is
// sure. Integers are compared exactly; otherwise as float64, whose rounding
// keeps order but may make two different numbers equal: equal is unsure.
func (b *bound) cmp(n json.Number) (int, bool) {
	if b.isInt {
		if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
			switch {
			case i < b.i:
				return -1, true
			case i > b.i:
				return 1, true
			}
			return 0, true
		}
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return 0, false // out of float64's range
	}
	switch {
	case f < b.f:
		return -1, true
	case f > b.f:
		return 1, true
	}
	return 0, false
}

// ok tells whether v, decoded data, surely passes c.
func (c *check) ok(v any) bool {
	if c.alwaysInvalid {
		return false
	}
	if c.types != nil && !c.typeOK(v) {
		return false
	}
	if c.enum != nil {
		found := false
		for _, e := range c.enum {
			if e == v {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	switch v := v.(type) {
	case map[string]any:
		for _, name := range c.required {
			if _, ok := v[name]; !ok {
				return false
			}
		}
		for name, x := range v {
			if p, ok := c.properties[name]; ok {
				if !p.ok(x) {
					return false
				}
				continue
			}
			if c.noAdditional || c.additional != nil && !c.additional.ok(x) {
				return false
			}
		}
	case []any:
		if len(v) < c.minItems || c.maxItems >= 0 && len(v) > c.maxItems {
			return false
		}
		if c.items != nil {
			for _, x := range v {
				if !c.items.ok(x) {
					return false
				}
			}
		}
	case string:
		if c.minLength > 0 || c.maxLength >= 0 {
			n := utf8.RuneCountInString(v)
			if n < c.minLength || c.maxLength >= 0 && n > c.maxLength {
				return false
			}
		}
		if c.pattern != nil && !c.pattern.MatchString(v) {
			return false
		}
	case json.Number:
		if c.min != nil {
			if r, sure := c.min.cmp(v); !sure || r < 0 {
				return false
			}
		}
		if c.max != nil {
			if r, sure := c.max.cmp(v); !sure || r > 0 {
				return false
			}
		}
		if c.exMin != nil {
			if r, sure := c.exMin.cmp(v); !sure || r <= 0 {
				return false
			}
		}
		if c.exMax != nil {
			if r, sure := c.exMax.cmp(v); !sure || r >= 0 {
				return false
			}
		}
	}
	return true
}

// typeOK tells whether v is surely of one of c's types.
func (c *check) typeOK(v any) bool {
	for _, t := range c.types {
		switch v := v.(type) {
		case map[string]any:
			if t == "object" {
				return true
			}
		case []any:
			if t == "array" {
				return true
			}
		case string:
			if t == "string" {
				return true
			}
		case bool:
			if t == "boolean" {
				return true
			}
		case nil:
			if t == "null" {
				return true
			}
		case json.Number:
			// An integer is written without fraction or exponent here;
			// 1.0 and 1e2 are integers too, but left to the library.
			if t == "number" || t == "integer" && !strings.ContainsAny(string(v), ".eE") {
				return true
			}
		}
	}
	return false
}
