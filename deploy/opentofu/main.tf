data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_availability_zones" "available" {
  #checkov:skip=CKV_AWS_394:The module takes exactly two zones, from var.availability_zones when set, else slice(names, 0, 2) of the sorted names; a zone AWS adds later cannot widen the set. The README tells production users to pin the zones.
  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  prefix     = "${var.name}-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  azs = length(var.availability_zones) == 2 ? var.availability_zones : slice(data.aws_availability_zones.available.names, 0, 2)

  container_name = "api"
  container_port = 8080

  # Fargate's valid CPU/memory pairs (MiB).
  fargate_memory_ok = (
    var.task_cpu == 256 ? contains([512, 1024, 2048], var.task_memory) :
    var.task_cpu == 512 ? var.task_memory >= 1024 && var.task_memory <= 4096 && var.task_memory % 1024 == 0 :
    var.task_cpu == 1024 ? var.task_memory >= 2048 && var.task_memory <= 8192 && var.task_memory % 1024 == 0 :
    var.task_cpu == 2048 ? var.task_memory >= 4096 && var.task_memory <= 16384 && var.task_memory % 1024 == 0 :
    var.task_cpu == 4096 ? var.task_memory >= 8192 && var.task_memory <= 30720 && var.task_memory % 1024 == 0 :
    var.task_cpu == 8192 ? var.task_memory >= 16384 && var.task_memory <= 61440 && var.task_memory % 4096 == 0 :
    var.task_memory >= 32768 && var.task_memory <= 122880 && var.task_memory % 8192 == 0
  )
}

# One customer managed key for everything this module encrypts at rest: the secrets, the
# database and its Performance Insights, the log groups (API, VPC flow logs, ECS Exec, Step
# Functions). The ALB access log bucket is the exception: ALB log delivery supports SSE-S3 only.
resource "aws_kms_key" "main" {
  description             = "${local.prefix}: secrets, RDS, Performance Insights and CloudWatch Logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.prefix}"
  target_key_id = aws_kms_key.main.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:This is a KMS key policy: Resource "*" means this key only, and kms:* for the account root is AWS's default key policy, which delegates access control to IAM policies (without it the key becomes unmanageable).
  #checkov:skip=CKV_AWS_111:Same key policy: "*" is this key, and the write actions are granted to this account's root (IAM-delegated) and to CloudWatch Logs, the latter constrained to this account's log groups by encryption context.
  #checkov:skip=CKV_AWS_356:Same key policy: in a key policy the only valid resource is "*", which stands for the key itself.
  # The account (its IAM policies) administers and uses the key; Secrets Manager, RDS and
  # ECS use it on behalf of IAM principals, through this delegation.
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch Logs encrypts the module's log groups (and only log groups of this account).
  statement {
    sid = "CloudWatchLogs"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }
}
