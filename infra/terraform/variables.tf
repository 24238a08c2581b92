variable "project_id" {
  description = "Google Cloud project that holds the topics, subscriptions and service accounts."
  type        = string
}

variable "push_endpoint" {
  description = "HTTPS URL of Gwook's POST /notifications, as Pub/Sub reaches it (e.g. https://gwook.example.com/notifications). Null with cloud_run: the Cloud Run service's URL + /notifications."
  type        = string
  default     = null

  validation {
    condition     = var.push_endpoint == null ? true : startswith(var.push_endpoint, "https://")
    error_message = "push_endpoint must be an https:// URL: Pub/Sub sends OIDC tokens only over HTTPS."
  }
}

variable "push_audience" {
  description = "Audience of the OIDC tokens Pub/Sub sends, and Gwook's PUBSUB_PUSH_AUDIENCE. Null means push_endpoint, or with cloud_run the service's deterministic URL + /notifications."
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

# Region of what runs Gwook on Google Cloud

variable "region" {
  description = "Region of the Artifact Registry repository, the Cloud Run service, Memorystore and Cloud SQL."
  type        = string
  default     = "europe-west1"
}

# Artifact Registry and CI

variable "artifact_registry" {
  description = "Create the Docker repository in Artifact Registry that CI publishes Gwook's image to, and the CI service account that may push to it."
  type        = bool
  default     = true
}

variable "artifact_registry_repository" {
  description = "Repository ID in Artifact Registry (the CI repository variable GAR_REPOSITORY)."
  type        = string
  default     = "gwook"
}

variable "ci_service_account_id" {
  description = "Account ID of the service account CI publishes the image as (the CI repository variable GCP_SERVICE_ACCOUNT)."
  type        = string
  default     = "gwook-ci"
}

variable "github_repository" {
  description = "GitHub repository (owner/name) whose workflow runs on main and on tags may act as the CI service account, through a Workload Identity Federation pool and provider. Null: no pool (bring your own)."
  type        = string
  default     = null

  validation {
    condition     = var.github_repository == null ? true : can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name."
  }
}

variable "workload_identity_pool_id" {
  description = "ID of the Workload Identity Federation pool for GitHub Actions, when github_repository is set."
  type        = string
  default     = "github"
}

variable "workload_identity_provider_id" {
  description = "ID of the pool's OIDC provider for GitHub Actions, when github_repository is set."
  type        = string
  default     = "github-actions"
}

# Cloud Run

variable "cloud_run" {
  description = "Run Gwook as a Cloud Run service (beside or instead of the Kubernetes manifests). The push subscription then points at it unless push_endpoint says otherwise."
  type        = bool
  default     = false
}

variable "run_service_name" {
  description = "Name of the Cloud Run service."
  type        = string
  default     = "gwook"
}

variable "run_image" {
  description = "Image the Cloud Run service runs, e.g. europe-west1-docker.pkg.dev/PROJECT/gwook/gwook:COMMIT_SHA (output image_repository, with a tag CI pushed). Required with cloud_run."
  type        = string
  default     = null
}

variable "run_min_instances" {
  description = "Instances kept running. At least 1 with direct delivery or streaming pull, whose work does not come from requests; 1 also spares the first push after a quiet spell a cold start."
  type        = number
  default     = 1

  validation {
    condition     = var.run_min_instances >= 0
    error_message = "run_min_instances must be 0 or more."
  }
}

variable "run_max_instances" {
  description = "Most instances Cloud Run starts. With one instance at 60% of a vCPU taking about 3,000 events/s (README, Performance), 10 take about 30,000/s; keep it times the connections per instance within what Redis and PostgreSQL accept."
  type        = number
  default     = 10

  validation {
    condition     = var.run_max_instances >= 1
    error_message = "run_max_instances must be 1 or more."
  }
}

variable "run_max_concurrency" {
  description = "Requests one instance is sent at once (max_instance_request_concurrency). 100: at most SVIX_MAX_CONNS_PER_HOST, so no event waits inside Gwook for a connection to Svix; the benchmark gains nothing past 64 in flight per instance (infra/README.md, Deploying on Cloud Run)."
  type        = number
  default     = 100

  validation {
    condition     = var.run_max_concurrency >= 1 && var.run_max_concurrency <= 1000
    error_message = "run_max_concurrency must be between 1 and 1000."
  }
}

variable "run_cpu" {
  description = "vCPUs of one instance."
  type        = string
  default     = "1"
}

variable "run_memory" {
  description = "Memory of one instance: MAX_IN_FLIGHT_BYTES of bodies took Gwook to at most 390 MiB RSS, plus the dead-letter publisher's buffer."
  type        = string
  default     = "512Mi"
}

variable "run_timeout" {
  description = "Cloud Run's request timeout. Above Gwook's own answer times, so Gwook's limits act first: HTTP_SERVER_WRITE_TIMEOUT (30s) for events, 170s for a Firehose batch."
  type        = string
  default     = "180s"
}

variable "run_ingress" {
  description = "Who may reach the service: INGRESS_TRAFFIC_ALL (producers POST from anywhere), or INGRESS_TRAFFIC_INTERNAL_ONLY (the VPC, and Pub/Sub push and Eventarc of the same project)."
  type        = string
  default     = "INGRESS_TRAFFIC_ALL"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"], var.run_ingress)
    error_message = "run_ingress must be INGRESS_TRAFFIC_ALL, INGRESS_TRAFFIC_INTERNAL_ONLY or INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER."
  }
}

variable "run_env" {
  description = "Gwook settings added to (or replacing) the service's plain environment, e.g. { FILTER_EXCLUDE_TYPES = \"test.*\" }. Never credentials: those go in run_secret_env."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([for name in keys(var.run_env) : !contains([
      "AUTH_PASSWORD", "SVIX_AUTH_TOKEN", "PUBSUB_VERIFICATION_TOKEN", "SENTRY_DSN",
      "FIREHOSE_ACCESS_KEYS", "DATABASE_URL", "REDIS_URL",
    ], name)])
    error_message = "run_env must not hold credentials (AUTH_PASSWORD, SVIX_AUTH_TOKEN, PUBSUB_VERIFICATION_TOKEN, SENTRY_DSN, FIREHOSE_ACCESS_KEYS, DATABASE_URL, REDIS_URL): name a Secret Manager secret in run_secret_env instead."
  }
}

variable "run_secret_env" {
  description = "Gwook settings read from Secret Manager, by environment variable: the secret's ID in project_id (or projects/P/secrets/S). Create the secrets and their versions first; Terraform grants Gwook's service account access to each and never sees a value. DATABASE_URL and REDIS_URL are added by cloud_sql and memorystore."
  type        = map(string)
  default = {
    AUTH_PASSWORD   = "gwook-auth-password"
    SVIX_AUTH_TOKEN = "gwook-svix-auth-token"
    SENTRY_DSN      = "gwook-sentry-dsn"
  }
}

# Direct VPC egress, for Memorystore (and anything else on private addresses)

variable "vpc_network" {
  description = "VPC network (its ID, projects/PROJECT/global/networks/NAME) Memorystore is attached to and Cloud Run's Direct VPC egress uses. Required with memorystore."
  type        = string
  default     = null
}

variable "vpc_subnetwork" {
  description = "Subnetwork of vpc_network that Cloud Run instances take their addresses from (Direct VPC egress; a /26 or larger for run_max_instances up to about 30). Null: no VPC egress. Required with memorystore and cloud_run."
  type        = string
  default     = null
}

# Memorystore for Redis (optional)

variable "memorystore" {
  description = "Create a Memorystore for Redis instance, with AUTH and TLS, for duplicate suppression shared by every instance; its rediss:// URL becomes Gwook's REDIS_URL through Secret Manager."
  type        = bool
  default     = false
}

variable "memorystore_name" {
  description = "Name of the Memorystore instance."
  type        = string
  default     = "gwook"
}

variable "memorystore_tier" {
  description = "BASIC (one node) or STANDARD_HA (a replica that takes over on failure)."
  type        = string
  default     = "STANDARD_HA"
}

variable "memorystore_memory_size_gb" {
  description = "Memory of the Memorystore instance in GiB. A dedup key lives DEDUP_TTL (1m): 1 GiB holds several million."
  type        = number
  default     = 1
}

variable "memorystore_redis_version" {
  description = "Redis version of the Memorystore instance."
  type        = string
  default     = "REDIS_7_2"
}

# Cloud SQL for PostgreSQL (optional)

variable "cloud_sql" {
  description = "Create a Cloud SQL for PostgreSQL instance, database and user for Gwook's applications, endpoints, tokens and stats; its DATABASE_URL (over the Cloud SQL connector's Unix socket) goes to Secret Manager."
  type        = bool
  default     = false
}

variable "cloud_sql_instance_name" {
  description = "Name of the Cloud SQL instance."
  type        = string
  default     = "gwook"
}

variable "cloud_sql_database_version" {
  description = "PostgreSQL version of the Cloud SQL instance."
  type        = string
  default     = "POSTGRES_16"
}

variable "cloud_sql_tier" {
  description = "Machine type of the Cloud SQL instance (db-custom-1-3840: 1 vCPU, 3.75 GiB, 100 connections, room for run_max_instances pools of pgx's default 4)."
  type        = string
  default     = "db-custom-1-3840"
}

variable "cloud_sql_availability_type" {
  description = "REGIONAL (a standby in another zone) or ZONAL."
  type        = string
  default     = "REGIONAL"
}

variable "cloud_sql_deletion_protection" {
  description = "Refuse to destroy the Cloud SQL instance (and its data) from Terraform."
  type        = bool
  default     = true
}
