// Package events holds Go types for the events Gwook takes, for producers
// to build and check them with: the data of each documented event type
// (UserSignedUpData for user.signed_up, InvoicePaidData for invoice.paid,
// and so on, as listed in Notification's x-gwook-event-types), the
// Notification envelope, and Gwook's answers (Accepted, Problem,
// FieldError, FirehoseRequest, FirehoseResponse).
//
// The types are generated from test/events/event-spec.json (OpenAPI 3.0.3)
// by oapi-codegen, models only, with the settings of oapi-codegen.yaml:
// numbers without a format are float64, emails plain strings, enum values
// named after their type (UserSignedUpDataPlanPro). A required property is
// a plain field, an optional one a pointer with omitempty, and a nullable
// one a pointer, so that an event marshalled from them carries every
// required property. Nothing here validates: Gwook checks an event's data
// against the schema of its type in the catalogue of event types.
//
// After a change of the spec, regenerate with
//
//	go generate ./events
//
// The generator is pinned by the version in the go:generate line and run
// with go run, so that it is no dependency of the module: importing this
// package brings in the standard library only. TestGeneratedIsCurrent fails
// when events.gen.go is not what the generator makes of the spec.
package events

//go:generate go run github.com/oapi-codegen/oapi-codegen/v2/cmd/oapi-codegen@v2.8.2 -config oapi-codegen.yaml ../test/events/event-spec.json
