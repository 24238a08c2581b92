package eventtype

var Decode = decode
