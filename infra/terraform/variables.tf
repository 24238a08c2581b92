variable "project_id" {
  description = "Google Cloud project that holds the topics, subscriptions and service accounts."
  type        = string
}

variable "push_endpoint" {
  description = "HTTPS URL of Gwook's POST /notifications, as Pub/Sub reaches it (e.g. https://gwook.example.com/notifications)."
  type        = string

  validation {
    condition     = startswith(var.push_endpoint, "https://")
    error_message = "push_endpoint must be an https:// URL: Pub/Sub sends OIDC tokens only over HTTPS."
  }
}

variable "push_audience" {
  description = "Audience of the OIDC tokens Pub/Sub sends, and Gwook's PUBSUB_PUSH_AUDIENCE. Null means push_endpoint."
  type        = string
  default     = null
}

variable "source_topic_name" {
  description = "Topic the producers publish events to; Gwook's push subscription reads it."
  type        = string
  default     = "events"
}

variable "push_subscription_name" {
  description = "Push subscription that delivers the source topic to Gwook."
  type        = string
  default     = "gwook-push"
}

variable "push_ack_deadline_seconds" {
  description = "How long Pub/Sub waits for Gwook's answer to a push. Keep it above Gwook's worst case for one request (Redis claim + DEDUP_WAIT + SVIX_RETRY_MAX_ELAPSED + the claim's release + DEAD_LETTER_PUBLISH_TIMEOUT: 18s by default with Redis and a dead-letter topic), or Pub/Sub redelivers while Gwook still works."
  type        = number
  default     = 30

  validation {
    condition     = var.push_ack_deadline_seconds >= 10 && var.push_ack_deadline_seconds <= 600
    error_message = "push_ack_deadline_seconds must be between 10 and 600."
  }
}

variable "push_minimum_backoff" {
  description = "Shortest wait before Pub/Sub redelivers a push Gwook did not ack (a duration such as \"10s\")."
  type        = string
  default     = "10s"
}

variable "push_maximum_backoff" {
  description = "Longest wait before Pub/Sub redelivers a push Gwook did not ack (at most \"600s\")."
  type        = string
  default     = "600s"
}

variable "push_max_delivery_attempts" {
  description = "Deliveries of one message before Pub/Sub moves it to the undeliverable topic (5 to 100)."
  type        = number
  default     = 10

  validation {
    condition     = var.push_max_delivery_attempts >= 5 && var.push_max_delivery_attempts <= 100
    error_message = "push_max_delivery_attempts must be between 5 and 100."
  }
}

variable "push_no_wrapper" {
  description = "Push the event itself instead of Pub/Sub's JSON envelope, with the message metadata in x-goog-pubsub-* headers. Gwook accepts both."
  type        = bool
  default     = false
}

variable "push_message_retention_duration" {
  description = "How long the push subscription keeps messages Gwook has not acked (at most \"604800s\", 7 days)."
  type        = string
  default     = "604800s"
}

variable "undeliverable_topic_name" {
  description = "Topic the push subscription's own dead-letter policy moves messages to after push_max_delivery_attempts (Gwook refused them for good, e.g. Svix answered 4xx)."
  type        = string
  default     = "events-undeliverable"
}

variable "undeliverable_subscription_name" {
  description = "Pull subscription that keeps the undeliverable topic's messages for inspection (a topic without subscriptions drops what it receives)."
  type        = string
  default     = "events-undeliverable-inspect"
}

variable "dead_letter_topic_name" {
  description = "Gwook's dead-letter topic (DEAD_LETTER_TOPIC): events Svix kept refusing with 429 or 5xx, and pushes that are not valid events."
  type        = string
  default     = "gwook-dead-letter"
}

variable "replay_subscription_name" {
  description = "Pull subscription on the dead-letter topic that `gwook replay --subscription` reads."
  type        = string
  default     = "gwook-dead-letter-replay"
}

variable "dead_letter_retention_duration" {
  description = "How long the replay and undeliverable subscriptions keep messages nobody acked (at most \"604800s\", 7 days)."
  type        = string
  default     = "604800s"
}

variable "gwook_service_account_id" {
  description = "Account ID of the Google service account Gwook runs as (the part before @)."
  type        = string
  default     = "gwook"
}

variable "push_service_account_id" {
  description = "Account ID of the Google service account whose OIDC tokens the push subscription sends (Gwook's PUBSUB_PUSH_SERVICE_ACCOUNT)."
  type        = string
  default     = "gwook-push"
}

variable "workload_identity" {
  description = "Let the Kubernetes service account kubernetes_namespace/kubernetes_service_account act as Gwook's Google service account (GKE Workload Identity). Needs a cluster with a workload pool in project_id."
  type        = bool
  default     = true
}

variable "kubernetes_namespace" {
  description = "Namespace Gwook is deployed to, for the Workload Identity binding."
  type        = string
  default     = "gwook"
}

variable "kubernetes_service_account" {
  description = "Name of Gwook's Kubernetes service account (infra/k8s/serviceaccount.yaml), for the Workload Identity binding."
  type        = string
  default     = "gwook"
}

variable "labels" {
  description = "Labels added to every topic and subscription."
  type        = map(string)
  default     = {}
}

variable "eventarc_run_service" {
  description = "Name of the Cloud Run service Gwook runs as. When set, an Eventarc trigger delivers the source topic to its /notifications as CloudEvents, in place of the push subscription; null: no trigger."
  type        = string
  default     = null
}

variable "eventarc_location" {
  description = "Region of the Eventarc trigger and of the Cloud Run service eventarc_run_service."
  type        = string
  default     = "europe-west1"
}

variable "eventarc_trigger_name" {
  description = "Name of the Eventarc trigger, when eventarc_run_service is set."
  type        = string
  default     = "gwook-events"
}
