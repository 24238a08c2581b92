package eventtype

var Decode = decode

// DecodeTokens is the token decoder that decode falls back on for errors.
var DecodeTokens = decodeTokens

func ValidateDecoded(s *Schema, v any) error { return s.compiled.Validate(v) }
