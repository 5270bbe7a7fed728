# RDS rotates the master password in its managed secret (every 7 days by default). ECS reads
# secrets only when a task starts, so after a rotation the running tasks hold the old password:
# their open connections keep working, new ones would be refused. When Secrets Manager reports
# RotationSucceeded for that secret (a CloudTrail event on the default event bus), this rule
# starts a one-step Step Functions workflow that calls ecs:UpdateService with
# forceNewDeployment: a rolling restart (minimum healthy 100 %), the new tasks read the new
# password. No Lambda code involved.

resource "aws_cloudwatch_event_rule" "db_secret_rotated" {
  count = var.redeploy_on_db_secret_rotation ? 1 : 0

  name        = "${local.prefix}-db-secret-rotated"
  description = "RDS rotated the ${local.prefix} master password: redeploy the API"

  event_pattern = jsonencode({
    source        = ["aws.secretsmanager"]
    "detail-type" = ["AWS Service Event via CloudTrail"]
    detail = {
      eventSource = ["secretsmanager.amazonaws.com"]
      eventName   = ["RotationSucceeded"]
      additionalEventData = {
        SecretId = [aws_db_instance.main.master_user_secret[0].secret_arn]
      }
    }
  })
}

resource "aws_cloudwatch_event_target" "db_secret_rotated" {
  count = var.redeploy_on_db_secret_rotation ? 1 : 0

  rule     = aws_cloudwatch_event_rule.db_secret_rotated[0].name
  arn      = aws_sfn_state_machine.redeploy[0].arn
  role_arn = aws_iam_role.events_redeploy[0].arn
}

resource "aws_cloudwatch_log_group" "redeploy" {
  count = var.redeploy_on_db_secret_rotation ? 1 : 0

  name              = "/aws/vendedlogs/states/${local.prefix}-redeploy"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_sfn_state_machine" "redeploy" {
  count = var.redeploy_on_db_secret_rotation ? 1 : 0

  name     = "${local.prefix}-redeploy"
  type     = "STANDARD"
  role_arn = aws_iam_role.sfn_redeploy[0].arn

  definition = jsonencode({
    Comment = "Force a new deployment of the ${local.prefix} API (new tasks read the rotated database password)"
    StartAt = "ForceNewDeployment"
    States = {
      ForceNewDeployment = {
        Type     = "Task"
        Resource = "arn:${local.partition}:states:::aws-sdk:ecs:updateService"
        Parameters = {
          Cluster            = aws_ecs_cluster.main.arn
          Service            = aws_ecs_service.api.name
          ForceNewDeployment = true
        }
        Retry = [{
          ErrorEquals     = ["States.ALL"]
          IntervalSeconds = 30
          MaxAttempts     = 5
          BackoffRate     = 2
        }]
        End = true
      }
    }
  })

  logging_configuration {
    log_destination        = "${aws_cloudwatch_log_group.redeploy[0].arn}:*"
    include_execution_data = true
    level                  = "ALL"
  }

  tracing_configuration {
    enabled = true
  }
}

# --- IAM -------------------------------------------------------------------------------------

data "aws_iam_policy_document" "sfn_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["states.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "sfn_redeploy" {
  count = var.redeploy_on_db_secret_rotation ? 1 : 0

  name_prefix        = "${local.prefix}-redeploy-"
  description        = "Step Functions: force a new deployment of the ${local.prefix} API"
  assume_role_policy = data.aws_iam_policy_document.sfn_assume.json
}

data "aws_iam_policy_document" "sfn_redeploy" {
  statement {
    sid       = "RedeployTheApi"
    actions   = ["ecs:UpdateService"]
    resources = [aws_ecs_service.api.id] # the service ARN
  }

  # Step Functions' log delivery and X-Ray APIs support no resource-level restriction.
  statement {
    sid = "LogDelivery"
    actions = [
      "logs:CreateLogDelivery",
      "logs:DeleteLogDelivery",
      "logs:DescribeLogGroups",
      "logs:DescribeResourcePolicies",
      "logs:GetLogDelivery",
      "logs:ListLogDeliveries",
      "logs:PutResourcePolicy",
      "logs:UpdateLogDelivery",
    ]
    resources = ["*"]
  }

  statement {
    sid = "Tracing"
    actions = [
      "xray:GetSamplingRules",
      "xray:GetSamplingTargets",
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "sfn_redeploy" {
  count = var.redeploy_on_db_secret_rotation ? 1 : 0

  name   = "redeploy-api"
  role   = aws_iam_role.sfn_redeploy[0].id
  policy = data.aws_iam_policy_document.sfn_redeploy.json
}

data "aws_iam_policy_document" "events_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "events_redeploy" {
  count = var.redeploy_on_db_secret_rotation ? 1 : 0

  name_prefix        = "${local.prefix}-rotated-"
  description        = "EventBridge: start the ${local.prefix} redeploy workflow"
  assume_role_policy = data.aws_iam_policy_document.events_assume.json
}

data "aws_iam_policy_document" "events_redeploy" {
  count = var.redeploy_on_db_secret_rotation ? 1 : 0

  statement {
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.redeploy[0].arn]
  }
}

resource "aws_iam_role_policy" "events_redeploy" {
  count = var.redeploy_on_db_secret_rotation ? 1 : 0

  name   = "start-redeploy"
  role   = aws_iam_role.events_redeploy[0].id
  policy = data.aws_iam_policy_document.events_redeploy[0].json
}
