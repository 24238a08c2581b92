package eventtype

var Decode = decode

// DecodeTokens is the token decoder that decode falls back on for errors.
var DecodeTokens = decodeTokens

func ValidateDecoded(s *Schema, v any) error { return s.compiled.Validate(v) }

// Check tells whether s has a quick check, and whether v passes it.
func Check(s *Schema, v any) (has, ok bool) {
	if s.check == nil {
		return false, false
	}
	return true, s.check.ok(v)
}
