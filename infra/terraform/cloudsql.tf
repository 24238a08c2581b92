# Optional: Cloud SQL for PostgreSQL, Gwook's database (cloud_sql = true):
# applications, endpoints, API tokens, stats, and direct delivery's queue.
#
# Gwook on Cloud Run reaches it through the Cloud SQL connector: Cloud Run
# mounts a Unix socket per instance under /cloudsql (cloudrun.tf), the
# connection is encrypted and authorised by IAM (roles/cloudsql.client),
# and the instance needs no authorised networks. DATABASE_URL names the
# socket directory (pgx reads host= from the query) and goes through
# Secret Manager, since it holds the password.

resource "random_password" "database" {
  count = var.cloud_sql ? 1 : 0

  length = 32
  # Letters and digits only: the password goes into a URL unescaped.
  special = false
}

resource "google_sql_database_instance" "gwook" {
  count = var.cloud_sql ? 1 : 0

  project             = var.project_id
  name                = var.cloud_sql_instance_name
  region              = var.region
  database_version    = var.cloud_sql_database_version
  deletion_protection = var.cloud_sql_deletion_protection

  settings {
    tier              = var.cloud_sql_tier
    availability_type = var.cloud_sql_availability_type
    user_labels       = var.labels

    backup_configuration {
      enabled                        = true
      point_in_time_recovery_enabled = true
    }

    # A public address without authorised networks: only the connector
    # (IAM) gets in, and only encrypted.
    ip_configuration {
      ipv4_enabled = true
      ssl_mode     = "ENCRYPTED_ONLY"
    }
  }
}

resource "google_sql_database" "gwook" {
  count = var.cloud_sql ? 1 : 0

  project  = var.project_id
  instance = google_sql_database_instance.gwook[0].name
  name     = "gwook"
}

resource "google_sql_user" "gwook" {
  count = var.cloud_sql ? 1 : 0

  project  = var.project_id
  instance = google_sql_database_instance.gwook[0].name
  name     = "gwook"
  password = random_password.database[0].result
}

# Cloud Run's connector connects as Gwook's service account.
resource "google_project_iam_member" "gwook_cloudsql_client" {
  count = var.cloud_sql ? 1 : 0

  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = google_service_account.gwook.member
}

resource "google_secret_manager_secret" "database_url" {
  count = var.cloud_sql ? 1 : 0

  project   = var.project_id
  secret_id = local.managed_secrets["DATABASE_URL"]
  labels    = var.labels

  replication {
    auto {}
  }
}

# The value (and the password) are in Terraform's state too: keep the state
# where secrets may be.
resource "google_secret_manager_secret_version" "database_url" {
  count = var.cloud_sql ? 1 : 0

  secret      = google_secret_manager_secret.database_url[0].id
  secret_data = "postgres://${google_sql_user.gwook[0].name}:${random_password.database[0].result}@/${google_sql_database.gwook[0].name}?host=/cloudsql/${google_sql_database_instance.gwook[0].connection_name}"
}
