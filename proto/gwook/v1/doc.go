// Package gwookv1 is the Go code generated from event.proto: Gwook's event
// as a protobuf message, with its protovalidate rules. internal/event/eventpb
// decodes it into an event.Notification.
//
// Regenerate with `make proto` (or `go generate ./proto/...`) after editing
// event.proto. buf runs from the Go module proxy at a pinned version and
// protoc-gen-go from go.mod's google.golang.org/protobuf; nothing is fetched
// from the Buf Schema Registry. TestGeneratedCodeIsCurrent fails when
// event.pb.go no longer matches event.proto.
package gwookv1

//go:generate sh -c "cd ../.. && go run github.com/bufbuild/buf/cmd/buf@v1.75.0 generate"
