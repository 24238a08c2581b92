package ingest

import (
	"net/http"
	"strings"

	"github.com/gwook/gwook/internal/event/eventpb"
	"github.com/gwook/gwook/internal/pipeline"
)

// AttrSchemaEncoding is the message attribute in which Pub/Sub says how
// the data of a message published to a topic with a schema is encoded:
// SchemaEncodingBinary or JSON. A message without it (a topic without a
// schema) is JSON.
const AttrSchemaEncoding = "googclient_schemaencoding"

// SchemaEncodingBinary is AttrSchemaEncoding's value for binary data: for
// a topic whose schema is the protobuf gwook.v1.Event, the event in binary
// protobuf.
const SchemaEncodingBinary = "BINARY"

// protobufData reports whether the data of a Pub/Sub message with attrs is
// binary protobuf.
func protobufData(attrs map[string]string) bool {
	return attrs[AttrSchemaEncoding] == SchemaEncodingBinary
}

// protobufBody reports whether a request body that is an event (not an
// envelope) is binary protobuf: its Content-Type is application/protobuf
// (or the older application/x-protobuf), or, for an unwrapped push, whose
// message attributes arrive as headers, the attribute
// googclient_schemaencoding is BINARY.
func protobufBody(h http.Header, entry pipeline.Entry) bool {
	if entry == pipeline.EntryPush && h.Get(AttrSchemaEncoding) == SchemaEncodingBinary {
		return true
	}
	// The media type, without parameters, compared as mime.ParseMediaType
	// would, but with no allocation on the path of every JSON request.
	mediaType, _, _ := strings.Cut(h.Get("Content-Type"), ";")
	mediaType = strings.TrimSpace(mediaType)
	return strings.EqualFold(mediaType, eventpb.ContentType) || strings.EqualFold(mediaType, "application/x-protobuf")
}
