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

output "push_endpoint" {
  description = "URL the push subscription delivers to: push_endpoint, or the Cloud Run service's /notifications."
  value       = local.push_endpoint
}

output "image_repository" {
  description = "Image name CI pushes to (REGION-docker.pkg.dev/PROJECT/REPOSITORY/gwook); tag it with a commit SHA or a version for run_image or kustomize. Null without artifact_registry."
  value       = var.artifact_registry ? "${var.region}-docker.pkg.dev/${var.project_id}/${var.artifact_registry_repository}/gwook" : null
}

output "ci_service_account_email" {
  description = "Service account CI publishes as: the repository variable GCP_SERVICE_ACCOUNT."
  value       = one(google_service_account.ci[*].email)
}

output "workload_identity_provider" {
  description = "Full name of the Workload Identity Federation provider for GitHub Actions: the repository variable GCP_WORKLOAD_IDENTITY_PROVIDER. Null without github_repository."
  value       = one(google_iam_workload_identity_pool_provider.github[*].name)
}

output "github_variables" {
  description = "The repository variables .github/workflows/ci.yml reads, by name: set each under Settings > Secrets and variables > Actions > Variables."
  value = {
    GCP_PROJECT_ID                 = var.project_id
    GAR_LOCATION                   = var.region
    GAR_REPOSITORY                 = var.artifact_registry_repository
    GCP_WORKLOAD_IDENTITY_PROVIDER = one(google_iam_workload_identity_pool_provider.github[*].name)
    GCP_SERVICE_ACCOUNT            = one(google_service_account.ci[*].email)
  }
}

output "run_service_uri" {
  description = "URL of the Cloud Run service; null without cloud_run."
  value       = one(google_cloud_run_v2_service.gwook[*].uri)
}

output "redis_ca_certificate" {
  description = "PEM certificate of the CA that signed the Memorystore instance's TLS certificate; null without memorystore."
  value       = try(google_redis_instance.gwook[0].server_ca_certs[0].cert, null)
}

output "cloud_sql_connection_name" {
  description = "PROJECT:REGION:INSTANCE of the Cloud SQL instance (its socket is /cloudsql/ followed by it); null without cloud_sql."
  value       = one(google_sql_database_instance.gwook[*].connection_name)
}
