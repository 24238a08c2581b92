package direct

import (
	"context"
	"time"

	"github.com/gwook/gwook/internal/event"
	"github.com/gwook/gwook/internal/store"
)

// StoreAsIfDied stores the event n of appID with deliveries due for
// recovery grace ahead, as Send does when it makes the first attempts
// itself, without making them: what a process that died right after the
// commit leaves.
func (q *Queue) StoreAsIfDied(ctx context.Context, appID string, n *event.Notification, grace time.Duration) (string, error) {
	var ids []string
	for _, e := range q.catalog.Endpoints(appID) {
		ids = append(ids, e.ID)
	}
	r, err := q.immediates.Do(ctx, outgoing{
		NewMessage: store.NewMessage{
			Message:     store.Message{ID: store.NewMessageID(), ApplicationID: appID, EventID: n.ID, EventType: n.Type, Body: n.Raw},
			EndpointIDs: ids,
			RecoverAt:   time.Now().Add(grace),
		},
		immediate: true,
	})
	return r.Message.ID, err
}
