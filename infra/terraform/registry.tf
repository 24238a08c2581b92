# Where CI publishes Gwook's image, and how it may, without a key:
#
#   GitHub Actions (push to main or a tag) --OIDC token--> Workload Identity
#   Federation provider --> acts as the CI service account --> pushes to
#   REGION-docker.pkg.dev/PROJECT/REPOSITORY/gwook
#
# .github/workflows/ci.yml reads the names from repository variables; the
# output github_variables lists them.

locals {
  github = var.artifact_registry && var.github_repository != null

  # GitHub's OIDC token names the repository and the ref. Only runs of this
  # repository on main or on a tag may act as the CI service account, the
  # same runs the workflow's image job is limited to: a pull request (even
  # from a branch of this repository) cannot publish.
  github_attribute_condition = "assertion.repository == '${coalesce(var.github_repository, "-")}' && (assertion.ref == 'refs/heads/main' || assertion.ref.startsWith('refs/tags/'))"
}

resource "google_artifact_registry_repository" "gwook" {
  count = var.artifact_registry ? 1 : 0

  project       = var.project_id
  location      = var.region
  repository_id = var.artifact_registry_repository
  format        = "DOCKER"
  description   = "Gwook's container images, published by CI."
  labels        = var.labels

  # Tags are not immutable: a version tag on a commit main already
  # published pushes that commit's SHA tag again, as does a re-run.
}

resource "google_service_account" "ci" {
  count = var.artifact_registry ? 1 : 0

  project      = var.project_id
  account_id   = var.ci_service_account_id
  display_name = "Gwook CI"
  description  = "GitHub Actions, through Workload Identity Federation: pushes Gwook's image."
}

# Push (and read) images in this repository only.
resource "google_artifact_registry_repository_iam_member" "ci_writer" {
  count = var.artifact_registry ? 1 : 0

  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.gwook[0].name
  role       = "roles/artifactregistry.writer"
  member     = google_service_account.ci[0].member
}

resource "google_iam_workload_identity_pool" "github" {
  count = local.github ? 1 : 0

  project                   = var.project_id
  workload_identity_pool_id = var.workload_identity_pool_id
  display_name              = "GitHub Actions"
  description               = "OIDC tokens of GitHub Actions workflow runs."
}

resource "google_iam_workload_identity_pool_provider" "github" {
  count = local.github ? 1 : 0

  project                            = var.project_id
  workload_identity_pool_id          = google_iam_workload_identity_pool.github[0].workload_identity_pool_id
  workload_identity_pool_provider_id = var.workload_identity_provider_id
  display_name                       = "GitHub Actions"

  attribute_mapping = {
    "google.subject"       = "assertion.sub"
    "attribute.repository" = "assertion.repository"
    "attribute.ref"        = "assertion.ref"
  }
  attribute_condition = local.github_attribute_condition

  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
}

# Tokens of the repository's runs that passed the condition may act as the
# CI service account.
resource "google_service_account_iam_member" "ci_workload_identity" {
  count = local.github ? 1 : 0

  service_account_id = google_service_account.ci[0].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github[0].name}/attribute.repository/${var.github_repository}"
}
