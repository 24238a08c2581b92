# Gwook on Cloud Run (cloud_run = true), beside or instead of infra/k8s:
#
#   Pub/Sub push (OIDC) / producers --> Cloud Run service gwook --> Svix
#                                         | Direct VPC egress --> Memorystore (rediss://)
#                                         | /cloudsql socket  --> Cloud SQL for PostgreSQL
#
# Sizing, from README.md's Performance section (one gwook, Redis dedup on,
# against a Svix-compatible server on loopback, 2 shared cores):
#   - gwook spends 170-200 us of CPU per event: one vCPU takes about 5,000
#     events/s, and about 3,000/s at the 60% CPU at which Cloud Run starts
#     another instance; run_max_instances = 10 is about 30,000 events/s.
#   - 6,051 events/s at 64 requests in flight and 5,747 at 256 (push
#     bodies: 5,496 and 5,312): past 64 in flight an instance only queues,
#     and its garbage collector scans more stacks. At 2,000 events/s the
#     answer took p50 0.86 ms, p99 5.70 ms. So run_max_concurrency is 100,
#     SVIX_MAX_CONNS_PER_HOST: no event waits inside Gwook for a connection
#     to Svix, and an instance with Svix slower than the benchmark's (tens
#     of ms in production) reaches Cloud Run's 60% concurrency target, and
#     scales out, before it queues.

locals {
  # Cloud Run's deterministic URL of the service, known before it exists.
  run_url      = "https://${var.run_service_name}-${data.google_project.project.number}.${var.region}.run.app"
  run_audience = "${local.run_url}/notifications"

  # Gwook's plain settings on Cloud Run: the ConfigMap's (infra/k8s), with
  # what differs on Cloud Run said where it differs. go test ./infra/...
  # checks every name against internal/config and the two against each
  # other, and loads them with internal/config.
  run_env_base = {
    # The container port, the probes' port; Cloud Run also sets PORT to it.
    HTTP_SERVER_PORT = "4000"
    # Not reachable from outside the instance: Cloud Run serves one port.
    METRICS_PORT = "9090"

    # Shutdown. Cloud Run stops routing to an instance before it sends
    # SIGTERM, so there is nothing to drain (the ConfigMap's 5s is for the
    # endpoints controller): Gwook closes its listener at once and finishes
    # the requests in flight. Cloud Run sends SIGKILL 10s after SIGTERM,
    # which this cannot change; Gwook's graceful timeout must still exceed
    # its request budget (18s with Redis and a dead-letter topic) or it
    # refuses to start. What takes longer than 10s is a request still in
    # its Svix retries: it is cut off unanswered, Pub/Sub redelivers it (a
    # producer sees the connection close), and the Svix idempotency key
    # keeps it to one message. infra/README.md, "Deploying on Cloud Run".
    HTTP_SERVER_DRAIN_DELAY               = "0s"
    HTTP_SERVER_GRACEFUL_SHUTDOWN_TIMEOUT = "30s"
    HTTP_SERVER_WRITE_TIMEOUT             = "30s"

    # Cloud Logging keeps each JSON line as jsonPayload (the level is
    # jsonPayload.level, not severity).
    LOG_LEVEL  = "info"
    LOG_FORMAT = "json"

    AUTH_USERNAME = "producer"

    PUBSUB_PUSH_AUDIENCE        = local.push_audience
    PUBSUB_PUSH_SERVICE_ACCOUNT = google_service_account.push.email

    SVIX_TIMEOUT            = "5s"
    SVIX_RETRY_MAX_ATTEMPTS = "5"
    SVIX_RETRY_MAX_ELAPSED  = "8s"
    # run_max_concurrency stays at or below it.
    SVIX_MAX_CONNS_PER_HOST = "100"

    # REDIS_URL is a secret here (Memorystore's AUTH string).
    REDIS_TIMEOUT      = "500ms"
    DEDUP_TTL          = "1m"
    DEDUP_KEY_FIELDS   = "type,project,source"
    DEDUP_FAILURE_MODE = "open"

    PUBSUB_PROJECT_ID           = var.project_id
    DEAD_LETTER_TOPIC           = google_pubsub_topic.dead_letter.name
    DEAD_LETTER_PUBLISH_TIMEOUT = "5s"

    SENTRY_ENVIRONMENT = "production"
    SENTRY_SAMPLE_RATE = "1.0"
  }
  # With Memorystore, the file of its CA (a secret volume, below).
  redis_ca_dir = "/etc/gwook/redis-ca"
  run_env = merge(
    local.run_env_base,
    var.memorystore ? { REDIS_TLS_CA_FILE = "${local.redis_ca_dir}/ca.pem" } : {},
    var.run_env,
  )

  # The secrets Terraform makes, by the variable they feed.
  managed_secrets = {
    for name, made in { DATABASE_URL = var.cloud_sql, REDIS_URL = var.memorystore } :
    name => "${var.run_service_name}-${replace(lower(name), "_", "-")}" if made
  }
  run_secret_env = merge(var.run_secret_env, local.managed_secrets)
}

resource "google_cloud_run_v2_service" "gwook" {
  count = local.cloud_run ? 1 : 0

  project  = var.project_id
  name     = var.run_service_name
  location = var.region
  ingress  = var.run_ingress
  labels   = var.labels

  # Gwook authenticates every request itself: Pub/Sub's OIDC tokens
  # (signature, audience, service account), API tokens, Basic auth,
  # Firehose keys. Cloud Run's invoker check would take the place of none
  # of them, would refuse producers (Basic auth and API tokens use the
  # Authorization header it reads), and removes the signature of the tokens
  # it checks before passing them on, so that Gwook could no longer verify
  # a push.
  invoker_iam_disabled = true

  template {
    service_account                  = google_service_account.gwook.email
    timeout                          = var.run_timeout
    max_instance_request_concurrency = var.run_max_concurrency
    execution_environment            = "EXECUTION_ENVIRONMENT_GEN2"
    labels                           = var.labels

    scaling {
      min_instance_count = var.run_min_instances
      max_instance_count = var.run_max_instances
    }

    # Direct VPC egress (no connector instances to run and size): private
    # addresses (Memorystore) through the VPC, the rest (Svix, Google
    # APIs) straight out.
    dynamic "vpc_access" {
      for_each = var.vpc_subnetwork == null ? [] : [var.vpc_subnetwork]
      content {
        egress = "PRIVATE_RANGES_ONLY"
        network_interfaces {
          network    = var.vpc_network
          subnetwork = vpc_access.value
        }
      }
    }

    # The Cloud SQL connector: a Unix socket per instance under /cloudsql,
    # authorised by IAM (roles/cloudsql.client), encrypted, no IP allowlist.
    dynamic "volumes" {
      for_each = google_sql_database_instance.gwook[*].connection_name
      content {
        name = "cloudsql"
        cloud_sql_instance {
          instances = [volumes.value]
        }
      }
    }

    dynamic "volumes" {
      for_each = google_secret_manager_secret.redis_ca[*].secret_id
      content {
        name = "redis-ca"
        secret {
          secret = volumes.value
          items {
            version = "latest"
            path    = "ca.pem"
          }
        }
      }
    }

    containers {
      image = var.run_image

      ports {
        name           = "http1"
        container_port = 4000
      }

      resources {
        limits = {
          cpu    = var.run_cpu
          memory = var.run_memory
        }
        # CPU always allocated, not only while a request is in flight.
        # Gwook works between requests: direct delivery makes the first
        # attempts after answering and runs the retry queue, streaming pull
        # has no requests at all, the stats are written every 10s, and
        # /ready's checks and Google's keys are refreshed in the
        # background. Throttled, all of that would stall.
        cpu_idle          = false
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.run_env
        content {
          name  = env.key
          value = env.value
        }
      }

      # Credentials only from Secret Manager, never as plain values.
      dynamic "env" {
        for_each = local.run_secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      dynamic "volume_mounts" {
        for_each = google_sql_database_instance.gwook[*].connection_name
        content {
          name       = "cloudsql"
          mount_path = "/cloudsql"
        }
      }

      dynamic "volume_mounts" {
        for_each = google_secret_manager_secret.redis_ca[*].secret_id
        content {
          name       = "redis-ca"
          mount_path = local.redis_ca_dir
        }
      }

      # Gwook listens only after its startup checks (configuration, the
      # dead-letter topic) pass: up to a minute, as on Kubernetes.
      startup_probe {
        period_seconds    = 2
        timeout_seconds   = 1
        failure_threshold = 30
        http_get {
          path = "/health"
          port = 4000
        }
      }

      # /health, not /ready: /ready reports dependencies (Svix, Redis, the
      # topic), and restarting Gwook fixes none of them. Cloud Run has no
      # readiness probe to take an instance out of rotation.
      liveness_probe {
        period_seconds    = 10
        timeout_seconds   = 2
        failure_threshold = 3
        http_get {
          path = "/health"
          port = 4000
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.run_image != null
      error_message = "Set run_image to the image CI pushed (output image_repository, tagged with a commit SHA or a version)."
    }
    precondition {
      condition     = contains(keys(local.run_secret_env), "DATABASE_URL")
      error_message = "Gwook on Cloud Run needs PostgreSQL: an instance's files are its own and in memory, so SQLite would lose applications and tokens. Set cloud_sql = true, or name a DATABASE_URL secret in run_secret_env."
    }
    precondition {
      condition     = var.run_max_instances == 1 || contains(keys(local.run_secret_env), "REDIS_URL") || lookup(local.run_env, "DEDUP_TTL", "") == "0"
      error_message = "More than one instance needs a shared dedup store: set memorystore = true, name a REDIS_URL secret in run_secret_env, or turn duplicate suppression off (run_env DEDUP_TTL = \"0\")."
    }
    precondition {
      condition     = !var.memorystore || var.vpc_subnetwork != null
      error_message = "Memorystore has only a private address: set vpc_network and vpc_subnetwork for Direct VPC egress."
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.gwook_run_secrets,
    google_secret_manager_secret_version.database_url,
    google_secret_manager_secret_version.redis_url,
    google_project_iam_member.gwook_cloudsql_client,
    google_pubsub_topic_iam_member.gwook_dead_letter_publisher,
    google_pubsub_topic_iam_member.gwook_dead_letter_viewer,
  ]
}

# Gwook's service account reads each secret it is given, and no other:
# those of its environment,
resource "google_secret_manager_secret_iam_member" "gwook_run_secrets" {
  for_each = local.cloud_run ? local.run_secret_env : {}

  project   = var.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.gwook.member

  depends_on = [google_secret_manager_secret.database_url, google_secret_manager_secret.redis_url]
}

# and the Memorystore CA's, mounted as a file.
resource "google_secret_manager_secret_iam_member" "gwook_run_redis_ca" {
  count = local.cloud_run && var.memorystore ? 1 : 0

  project   = var.project_id
  secret_id = google_secret_manager_secret.redis_ca[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.gwook.member
}

# The push subscription's identity may invoke the service, as Cloud Run's
# guide to push subscriptions has it. With the invoker check off (above) it
# grants nothing more; Gwook's own check of the token is what admits a
# push. With an Eventarc trigger, main.tf grants the same.
resource "google_cloud_run_v2_service_iam_member" "push_invoker" {
  count = local.cloud_run && !local.eventarc ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloud_run_v2_service.gwook[0].name
  role     = "roles/run.invoker"
  member   = google_service_account.push.member
}
