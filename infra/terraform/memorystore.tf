# Optional: Memorystore for Redis, Gwook's shared dedup store (memorystore = true).
#
# AUTH on, and TLS (SERVER_AUTHENTICATION): the client encrypts and checks
# the server's certificate; the port is 6378. Gwook gets it as one
# secret, REDIS_URL = rediss://:AUTH@HOST:6378/0, through Secret Manager,
# since it holds the AUTH string.
#
# The certificate is signed by the instance's own certificate authority
# (server_ca_certs, output redis_ca_certificate), not by a public one, so
# Gwook trusts that CA alone: the service mounts it from a secret of its
# own as a file (cloudrun.tf) and REDIS_TLS_CA_FILE names it. Every CA the
# instance lists is in the file, so a rotation of the server CA keeps
# working once it is applied.
#
# Reached from Cloud Run through Direct VPC egress (cloudrun.tf): the
# instance is peered into vpc_network and has no public address.

resource "google_redis_instance" "gwook" {
  count = var.memorystore ? 1 : 0

  project            = var.project_id
  name               = var.memorystore_name
  region             = var.region
  tier               = var.memorystore_tier
  memory_size_gb     = var.memorystore_memory_size_gb
  redis_version      = var.memorystore_redis_version
  authorized_network = var.vpc_network
  connect_mode       = "DIRECT_PEERING"
  labels             = var.labels

  auth_enabled            = true
  transit_encryption_mode = "SERVER_AUTHENTICATION"

  lifecycle {
    precondition {
      condition     = var.vpc_network != null
      error_message = "Memorystore needs vpc_network: it has only a private address in that network."
    }
  }
}

resource "google_secret_manager_secret" "redis_url" {
  count = var.memorystore ? 1 : 0

  project   = var.project_id
  secret_id = local.managed_secrets["REDIS_URL"]
  labels    = var.labels

  replication {
    auto {}
  }
}

# The value is in Terraform's state too: keep the state where secrets may be.
resource "google_secret_manager_secret_version" "redis_url" {
  count = var.memorystore ? 1 : 0

  secret      = google_secret_manager_secret.redis_url[0].id
  secret_data = "rediss://:${google_redis_instance.gwook[0].auth_string}@${google_redis_instance.gwook[0].host}:${google_redis_instance.gwook[0].port}/0"
}

resource "google_secret_manager_secret" "redis_ca" {
  count = var.memorystore ? 1 : 0

  project   = var.project_id
  secret_id = "${var.run_service_name}-redis-ca"
  labels    = var.labels

  replication {
    auto {}
  }
}

resource "google_secret_manager_secret_version" "redis_ca" {
  count = var.memorystore ? 1 : 0

  secret      = google_secret_manager_secret.redis_ca[0].id
  secret_data = join("", google_redis_instance.gwook[0].server_ca_certs[*].cert)
}
