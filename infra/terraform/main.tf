# Pub/Sub and IAM for Gwook:
#
#   producers -> source topic -> push subscription (OIDC) -> Gwook -> Svix
#                                  | refused for good, after
#                                  v push_max_delivery_attempts
#                                undeliverable topic -> inspection subscription
#
#   Gwook -> dead-letter topic -> replay subscription <- gwook replay

data "google_project" "project" {
  project_id = var.project_id
}

locals {
  eventarc  = var.eventarc_run_service != null
  cloud_run = var.cloud_run

  # Where the push subscription delivers: push_endpoint, or Gwook's Cloud
  # Run service (cloudrun.tf).
  push_endpoint = var.push_endpoint != null ? var.push_endpoint : (
    local.cloud_run ? "${one(google_cloud_run_v2_service.gwook[*].uri)}/notifications" : null
  )

  # The OIDC audience the push subscription asks for and Gwook checks
  # (PUBSUB_PUSH_AUDIENCE). On Cloud Run it is the service's deterministic
  # URL, known before the service exists: the service's own environment
  # carries it, so it cannot wait for the service's uri.
  push_audience = var.push_audience != null ? var.push_audience : (
    local.cloud_run && var.push_endpoint == null ? local.run_audience : var.push_endpoint
  )

  # Pub/Sub's service agent mints the push subscription's OIDC tokens and
  # carries out its dead-letter policy.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.project.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# Service accounts

resource "google_service_account" "gwook" {
  project      = var.project_id
  account_id   = var.gwook_service_account_id
  display_name = "Gwook"
  description  = "Gwook: publishes to its dead-letter topic and replays it."
}

resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = var.push_service_account_id
  display_name = "Gwook push"
  description  = "Identity in the OIDC tokens of the Pub/Sub push subscription to Gwook."
}

# GKE Workload Identity: Gwook's pods act as the gwook service account.
resource "google_service_account_iam_member" "gwook_workload_identity" {
  count = var.workload_identity ? 1 : 0

  service_account_id = google_service_account.gwook.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.kubernetes_namespace}/${var.kubernetes_service_account}]"
}

# Pub/Sub signs the push subscription's OIDC tokens as the push account.
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# Source topic and the push subscription to Gwook

resource "google_pubsub_topic" "source" {
  project = var.project_id
  name    = var.source_topic_name
  labels  = var.labels
}

resource "google_pubsub_topic" "undeliverable" {
  project = var.project_id
  name    = var.undeliverable_topic_name
  labels  = var.labels
}

resource "google_pubsub_subscription" "undeliverable" {
  project                    = var.project_id
  name                       = var.undeliverable_subscription_name
  topic                      = google_pubsub_topic.undeliverable.id
  ack_deadline_seconds       = 60
  message_retention_duration = var.dead_letter_retention_duration
  labels                     = var.labels

  # Never delete the subscription for inactivity: it is idle by design.
  expiration_policy {
    ttl = ""
  }
}

# The push subscription, unless an Eventarc trigger delivers the topic
# instead: both would send every event twice.
resource "google_pubsub_subscription" "push" {
  count = local.eventarc ? 0 : 1

  project                    = var.project_id
  name                       = var.push_subscription_name
  topic                      = google_pubsub_topic.source.id
  ack_deadline_seconds       = var.push_ack_deadline_seconds
  message_retention_duration = var.push_message_retention_duration
  labels                     = var.labels

  push_config {
    push_endpoint = local.push_endpoint

    # Gwook checks the token's signature, audience (PUBSUB_PUSH_AUDIENCE)
    # and email (PUBSUB_PUSH_SERVICE_ACCOUNT).
    oidc_token {
      service_account_email = google_service_account.push.email
      audience              = local.push_audience
    }

    dynamic "no_wrapper" {
      for_each = var.push_no_wrapper ? [true] : []
      content {
        # Gwook logs the message id, subscription and publish time from the
        # x-goog-pubsub-* headers.
        write_metadata = true
      }
    }
  }

  # Redeliveries of what Gwook did not ack (Svix down without a dead-letter
  # topic, Gwook unreachable) back off instead of hammering it.
  retry_policy {
    minimum_backoff = var.push_minimum_backoff
    maximum_backoff = var.push_maximum_backoff
  }

  # What Gwook keeps refusing (400 for a Svix 4xx, 401 for bad credentials)
  # ends on the undeliverable topic instead of being retried for 7 days.
  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.undeliverable.id
    max_delivery_attempts = var.push_max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  lifecycle {
    precondition {
      condition     = local.push_endpoint != null
      error_message = "Set push_endpoint, or cloud_run = true to push to the Cloud Run service."
    }
  }

  depends_on = [google_service_account_iam_member.push_token_creator, google_cloud_run_v2_service_iam_member.push_invoker]
}

# Before the push subscription was optional it had no index.
moved {
  from = google_pubsub_subscription.push
  to   = google_pubsub_subscription.push[0]
}

moved {
  from = google_pubsub_subscription_iam_member.push_subscriber
  to   = google_pubsub_subscription_iam_member.push_subscriber[0]
}

# Optional: an Eventarc trigger on the source topic, delivering each message
# to Gwook on Cloud Run as a CloudEvent (binary mode) at /notifications.
# Eventarc makes and owns its own push subscription on the topic, whose
# OIDC tokens name the trigger's service account: the push account, so
# PUBSUB_PUSH_SERVICE_ACCOUNT stays the same.
resource "google_eventarc_trigger" "gwook" {
  count = local.eventarc ? 1 : 0

  project         = var.project_id
  name            = var.eventarc_trigger_name
  location        = var.eventarc_location
  service_account = google_service_account.push.email
  labels          = var.labels

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.pubsub.topic.v1.messagePublished"
  }

  destination {
    cloud_run_service {
      service = var.eventarc_run_service
      region  = var.eventarc_location
      path    = "/notifications"
    }
  }

  transport {
    pubsub {
      topic = google_pubsub_topic.source.id
    }
  }

  depends_on = [google_cloud_run_v2_service_iam_member.eventarc_invoker, google_service_account_iam_member.push_token_creator]
}

# The trigger's identity may call the Cloud Run service.
resource "google_cloud_run_v2_service_iam_member" "eventarc_invoker" {
  count = local.eventarc ? 1 : 0

  project  = var.project_id
  location = var.eventarc_location
  name     = var.eventarc_run_service
  role     = "roles/run.invoker"
  member   = google_service_account.push.member

  # The service may be the one cloudrun.tf makes.
  depends_on = [google_cloud_run_v2_service.gwook]
}

# The dead-letter policy above needs the service agent to publish to the
# undeliverable topic and to ack on the push subscription.
resource "google_pubsub_topic_iam_member" "undeliverable_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.undeliverable.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "push_subscriber" {
  count = local.eventarc ? 0 : 1

  project      = var.project_id
  subscription = google_pubsub_subscription.push[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# Gwook's dead-letter topic and the subscription gwook replay reads

resource "google_pubsub_topic" "dead_letter" {
  project = var.project_id
  name    = var.dead_letter_topic_name
  labels  = var.labels
}

resource "google_pubsub_subscription" "replay" {
  project = var.project_id
  name    = var.replay_subscription_name
  topic   = google_pubsub_topic.dead_letter.id
  # gwook replay extends the lease of the messages it holds; 60s leaves room
  # for a slow Svix answer with every retry.
  ack_deadline_seconds       = 60
  message_retention_duration = var.dead_letter_retention_duration
  labels                     = var.labels

  # Dead letters can wait weeks between outages; an expired subscription
  # would lose everything published after it.
  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_topic_iam_member" "gwook_dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = google_service_account.gwook.member
}

# Gwook reads the topic (pubsub.topics.get) at startup and on /ready to
# check it exists; roles/pubsub.publisher does not include that.
resource "google_pubsub_topic_iam_member" "gwook_dead_letter_viewer" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.viewer"
  member  = google_service_account.gwook.member
}

resource "google_pubsub_subscription_iam_member" "gwook_replay_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.replay.name
  role         = "roles/pubsub.subscriber"
  member       = google_service_account.gwook.member
}
