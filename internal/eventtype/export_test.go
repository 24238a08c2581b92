package eventtype

var Decode = decode

func ValidateDecoded(s *Schema, v any) error { return s.compiled.Validate(v) }
