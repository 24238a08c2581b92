package svix

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	svixgo "github.com/svix/svix-webhooks/go"
	"go.opentelemetry.io/otel/attribute"
)

// MirrorEventType is a catalogued event type as Svix gets it.
type MirrorEventType struct {
	Name        string
	Description string
	// Schema is the JSON Schema of the events' data; nil for none.
	Schema   json.RawMessage
	Archived bool
}

// SchemaVersion is the version under which the schema is given to Svix,
// whose event types carry their schemas by version.
const SchemaVersion = "1"

// UpsertEventType makes Svix hold et as the event type called et.Name, with
// its description, schema (as version SchemaVersion; none when nil) and
// archived flag: Svix's PUT /api/v1/event-type/{name}, which creates it or
// replaces every field of the one Svix has, so that calling it again
// converges. Fields Gwook does not know (deprecated, group name, feature
// flags) are reset. Retries and errors are as UpsertApplication's.
func (s *Sender) UpsertEventType(ctx context.Context, et MirrorEventType) error {
	in := svixgo.EventTypeUpdate{Description: et.Description, Archived: &et.Archived}
	if et.Schema != nil {
		var schema any
		if err := json.Unmarshal(et.Schema, &schema); err != nil {
			return fmt.Errorf("svix: the schema of event type %s is not JSON: %w", et.Name, err)
		}
		in.Schemas = &map[string]any{SchemaVersion: schema}
	}
	return s.mirror(ctx, "svix.upsert_event_type", []attribute.KeyValue{attribute.String("svix.event_type", et.Name)},
		func(ctx context.Context) error {
			_, err := s.request(ctx, mirrorCall{op: "creating or updating event type " + et.Name, do: func(ctx context.Context) error {
				_, err := s.client.EventType.Update(ctx, et.Name, in)
				return err
			}})
			return err
		})
}

// DeleteEventType deletes the Svix event type called name as Svix deletes
// by default: it archives it, so that endpoints filtering on it keep their
// filter. An event type Svix does not have counts as deleted.
func (s *Sender) DeleteEventType(ctx context.Context, name string) error {
	return s.mirror(ctx, "svix.delete_event_type", []attribute.KeyValue{attribute.String("svix.event_type", name)},
		func(ctx context.Context) error {
			_, err := s.request(ctx, mirrorCall{op: "deleting event type " + name, do: func(ctx context.Context) error {
				return s.client.EventType.Delete(ctx, name, nil)
			}})
			if hasStatus(err, http.StatusNotFound) {
				return nil
			}
			return err
		})
}
