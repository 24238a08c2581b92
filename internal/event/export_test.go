package event

// DecodeMembers exposes Decode's member-by-member path, which the fuzz test
// holds the strict path to.
var DecodeMembers = decodeMembers
