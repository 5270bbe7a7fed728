# The API's own secrets. ECS reads them at task start and hands them to the container as
# environment variables; they never appear in the task definition.
#
# random_password keeps its result in the state (see README, "Secrets and state"); the database
# password is NOT generated here: RDS generates and keeps it (database.tf).

resource "random_password" "jwt" {
  length  = 64
  special = false # URL- and shell-safe; 64 alphanumerics are ~380 bits
}

resource "random_password" "metrics_token" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "jwt" {
  #checkov:skip=CKV2_AWS_57:No rotation Lambda: a new JWT key signs out every user at once (tokens live 15 minutes), so it is rotated by hand with `tofu apply -replace=random_password.jwt` and a new deployment, see README.
  name_prefix             = "${local.prefix}/jwt-secret-"
  description             = "GOTICKET_JWT_SECRET: HS256 signing key of the GoTicket API access tokens"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_version" "jwt" {
  secret_id     = aws_secretsmanager_secret.jwt.id
  secret_string = random_password.jwt.result
}

resource "aws_secretsmanager_secret" "metrics_token" {
  #checkov:skip=CKV2_AWS_57:No rotation Lambda: the token is shared with the Prometheus scraper, so it is rotated by hand together with the scraper's configuration (`tofu apply -replace=random_password.metrics_token`), see README.
  name_prefix             = "${local.prefix}/metrics-token-"
  description             = "GOTICKET_METRICS_TOKEN: bearer token for GET /metrics of the GoTicket API"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 30
}

resource "aws_secretsmanager_secret_version" "metrics_token" {
  secret_id     = aws_secretsmanager_secret.metrics_token.id
  secret_string = random_password.metrics_token.result
}
