output "project_id" {
  description = "Project of the topics and subscriptions: Gwook's PUBSUB_PROJECT_ID."
  value       = var.project_id
}

output "source_topic" {
  description = "Full name of the topic producers publish events to."
  value       = google_pubsub_topic.source.id
}

output "push_subscription" {
  description = "Full name of the push subscription that delivers events to Gwook; null with an Eventarc trigger."
  value       = one(google_pubsub_subscription.push[*].id)
}

output "eventarc_subscription" {
  description = "Full name of the push subscription Eventarc made for its trigger (its OIDC audience is Gwook's PUBSUB_PUSH_AUDIENCE); null without a trigger."
  value       = one(google_eventarc_trigger.gwook[*].transport[0].pubsub[0].subscription)
}

output "push_audience" {
  description = "Audience of the push subscription's OIDC tokens: Gwook's PUBSUB_PUSH_AUDIENCE."
  value       = local.push_audience
}

output "push_service_account_email" {
  description = "Service account in the push subscription's OIDC tokens: Gwook's PUBSUB_PUSH_SERVICE_ACCOUNT."
  value       = google_service_account.push.email
}

output "undeliverable_topic" {
  description = "Full name of the topic the push subscription's dead-letter policy moves refused messages to."
  value       = google_pubsub_topic.undeliverable.id
}

output "undeliverable_subscription" {
  description = "Full name of the pull subscription that keeps undeliverable messages for inspection."
  value       = google_pubsub_subscription.undeliverable.id
}

output "dead_letter_topic" {
  description = "ID of Gwook's dead-letter topic: Gwook's DEAD_LETTER_TOPIC (with PUBSUB_PROJECT_ID)."
  value       = google_pubsub_topic.dead_letter.name
}

output "replay_subscription" {
  description = "ID of the dead-letter pull subscription: pass it to gwook replay --subscription."
  value       = google_pubsub_subscription.replay.name
}

output "gwook_service_account_email" {
  description = "Service account Gwook runs as: the iam.gke.io/gcp-service-account annotation of its Kubernetes service account."
  value       = google_service_account.gwook.email
}

output "gwook_env" {
  description = "The Gwook settings this configuration determines, by environment variable, for the ConfigMap."
  value = {
    PUBSUB_PROJECT_ID           = var.project_id
    DEAD_LETTER_TOPIC           = google_pubsub_topic.dead_letter.name
    PUBSUB_PUSH_AUDIENCE        = local.push_audience
    PUBSUB_PUSH_SERVICE_ACCOUNT = google_service_account.push.email
  }
}
