package ingest

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/pipeline"
)

// FirehoseRequest is the body of a Kinesis Data Firehose HTTP endpoint
// delivery request (protocol version 1.0):
//
//	{"requestId": "...", "timestamp": 1578090901599, "records": [{"data": "<base64>"}, ...]}
//
// Each record's data is one event, as a producer would POST it to
// /notifications.
type FirehoseRequest struct {
	// RequestID is the request's id: the X-Amz-Firehose-Request-Id header
	// again, the same on every retry of the batch.
	RequestID string `json:"requestId"`
	// Timestamp is when Firehose made the request, in Unix milliseconds.
	Timestamp int64            `json:"timestamp"`
	Records   []FirehoseRecord `json:"records"`
}

// FirehoseRecord is one record of a FirehoseRequest.
type FirehoseRecord struct {
	// Data is the record's bytes in standard base64. Firehose allows
	// empty records, which are invalid events.
	Data string `json:"data"`
}

// Bounds of a Firehose request. Firehose sends at most 10,000 records;
// its request ids are GUIDs.
const (
	MaxFirehoseRecords         = 10_000
	MaxFirehoseRequestIDLength = 256
)

// FirehoseError says, in words fit for the caller, why a Firehose request
// body cannot be read. Such a body is refused whole.
type FirehoseError struct {
	Reason string
}

func (e *FirehoseError) Error() string { return e.Reason }

// DecodeFirehose reads the body of a Firehose request, already
// decompressed. It refuses, with a *FirehoseError, a body that is not a
// JSON object, lacks requestId or records, has more than
// MaxFirehoseRecords records, or whose members are of the wrong JSON type.
// Members it does not know are ignored. The records' data is not decoded
// here: a record that is not valid base64, or not a valid event, is one
// invalid event (see FirehoseMessage), not a reason to refuse the batch.
func DecodeFirehose(body []byte) (FirehoseRequest, error) {
	// Pointers tell a missing member from an empty one.
	var req struct {
		RequestID *string           `json:"requestId"`
		Timestamp int64             `json:"timestamp"`
		Records   *[]FirehoseRecord `json:"records"`
	}
	if err := jsonv2.Unmarshal(body, &req); err != nil {
		return FirehoseRequest{}, &FirehoseError{Reason: describeFirehoseError(err)}
	}
	switch {
	case req.RequestID == nil:
		return FirehoseRequest{}, &FirehoseError{Reason: "requestId is missing"}
	case len(*req.RequestID) > MaxFirehoseRequestIDLength:
		return FirehoseRequest{}, &FirehoseError{Reason: fmt.Sprintf("requestId is %d bytes, above the %d allowed",
			len(*req.RequestID), MaxFirehoseRequestIDLength)}
	case req.Records == nil:
		return FirehoseRequest{}, &FirehoseError{Reason: "records is missing"}
	case len(*req.Records) > MaxFirehoseRecords:
		return FirehoseRequest{}, &FirehoseError{Reason: fmt.Sprintf("the request has %d records, above the %d that Firehose sends at most",
			len(*req.Records), MaxFirehoseRecords)}
	}
	return FirehoseRequest{RequestID: *req.RequestID, Timestamp: req.Timestamp, Records: *req.Records}, nil
}

// recordPointer matches the JSON pointer of a record or of its data.
var recordPointer = regexp.MustCompile(`^/records/([0-9]+)(/data)?$`)

// describeFirehoseError says in words what is wrong in a body the JSON
// decoder refused, without the decoder's own text (Go type names).
func describeFirehoseError(err error) string {
	var semantic *jsonv2.SemanticError
	if errors.As(err, &semantic) {
		pointer := string(semantic.JSONPointer)
		want := ""
		switch m := recordPointer.FindStringSubmatch(pointer); {
		case pointer == "":
			return "the body must be a JSON object"
		case pointer == "/requestId":
			want = "a string"
		case pointer == "/timestamp":
			want = "a whole number (Unix milliseconds)"
		case pointer == "/records":
			want = "an array"
		case m != nil && m[2] == "":
			want = "an object"
		case m != nil:
			want = "a string (the record's data in base64)"
		default:
			return "the body is not a Firehose request"
		}
		return fmt.Sprintf("%s must be %s, not %s", strings.TrimPrefix(pointer, "/"), want, kindName(semantic.JSONKind))
	}
	var syntactic *jsontext.SyntacticError
	switch {
	case errors.As(err, &syntactic) && errors.Is(err, jsontext.ErrDuplicateName):
		return fmt.Sprintf("the body names %s twice", strings.TrimPrefix(string(syntactic.JSONPointer), "/"))
	case errors.As(err, &syntactic):
		return fmt.Sprintf("the body is not valid JSON (at byte %d)", syntactic.ByteOffset)
	}
	return "the body is not valid JSON"
}

// kindName names a JSON kind for a message.
func kindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "something else"
}

// FirehoseMessage is the pipeline message of record i of req: the
// record's data, decoded from base64, read as a raw event. sourceARN is
// the delivery stream (the X-Amz-Firehose-Source-Arn header). The message
// id, kept in logs and on the dead-letter topic, is the request id and the
// record's index, as "<requestId>/<i>". An event larger than maxEventBytes
// is not parsed: Err is an *EventTooLargeError; maxEventBytes 0 sets no
// limit.
func FirehoseMessage(req *FirehoseRequest, i int, sourceARN string, maxEventBytes int) pipeline.Message {
	m := pipeline.Message{Delivery: pipeline.Delivery{Entry: pipeline.EntryFirehose, Subscription: sourceARN,
		MessageID: req.RequestID + "/" + strconv.Itoa(i)}}
	encoded := req.Records[i].Data
	data, err := decodeBase64(encoded, "the record's data")
	if err != nil {
		// The record as it came is what the dead-letter topic keeps.
		m.Body = []byte(encoded)
		m.Err = err
		return m
	}
	m.Body = data
	if len(data) == 0 {
		m.Err = &event.InvalidError{Reason: "the record is empty"}
		return m
	}
	m.Event, m.Err = decodeEvent(data, maxEventBytes, false)
	return m
}
