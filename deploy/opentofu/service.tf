# The API on ECS Fargate: tasks in the private subnets behind the ALB, secrets injected from
# Secrets Manager, logs to a KMS-encrypted log group, auto scaling on CPU and on requests.
#
# Database password: RDS keeps it in its managed secret as JSON {"username", "password"}. ECS
# injects just the "password" key as PGPASSWORD, and GOTICKET_DATABASE_URL (a plain environment
# variable) carries no password: asyncpg (the API) and libpq/psycopg (the migrations) both read
# PGPASSWORD when the URL has none. See README, "Secrets and state".

locals {
  db_url = "postgresql://${var.db_username}@${aws_db_instance.main.address}:${aws_db_instance.main.port}/${var.db_name}?sslmode=require"

  environment = merge(var.extra_environment, {
    GOTICKET_HOST         = "0.0.0.0"
    GOTICKET_PORT         = tostring(local.container_port)
    GOTICKET_WORKERS      = tostring(var.app_workers)
    GOTICKET_DB_POOL_MAX  = tostring(var.db_pool_max)
    GOTICKET_LOG_LEVEL    = var.log_level
    GOTICKET_DATABASE_URL = local.db_url
    # The only writable path when the root file system is read-only (the "tmp" volume): the
    # multi-worker Prometheus folder lives here. JWT key and metrics token come from secrets.
    GOTICKET_DATA_DIR = "/tmp/goticket"
  })

  secrets = {
    GOTICKET_JWT_SECRET    = aws_secretsmanager_secret.jwt.arn
    GOTICKET_METRICS_TOKEN = aws_secretsmanager_secret.metrics_token.arn
    PGPASSWORD             = "${aws_db_instance.main.master_user_secret[0].secret_arn}:password::"
  }

  api_container = merge(
    {
      name      = local.container_name
      image     = var.image
      essential = true
      portMappings = [{
        name          = "http"
        containerPort = local.container_port
        hostPort      = local.container_port
        protocol      = "tcp"
        appProtocol   = "http"
      }]
      environment = [for key in sort(keys(local.environment)) : { name = key, value = local.environment[key] }]
      secrets     = [for key in sort(keys(local.secrets)) : { name = key, valueFrom = local.secrets[key] }]
      healthCheck = {
        command     = var.container_health_check_command
        interval    = 15
        timeout     = 5
        retries     = 3
        startPeriod = 60 # migrations run at start, under an advisory lock
      }
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.api.name
          awslogs-region        = local.region
          awslogs-stream-prefix = "api"
          mode                  = "non-blocking"
          max-buffer-size       = "25m"
        }
      }
      readonlyRootFilesystem = !var.enable_execute_command
      privileged             = false
      mountPoints = [{
        sourceVolume  = "tmp"
        containerPath = "/tmp"
        readOnly      = false
      }]
      linuxParameters = {
        initProcessEnabled = true # reaps the worker processes' children; needed by ECS Exec
      }
      # SIGTERM, then GOTICKET_SHUTDOWN_GRACE (20 s) to finish in-flight requests, then SIGKILL.
      stopTimeout = 30
    },
    var.container_command == null ? {} : { command = var.container_command },
  )
}

resource "aws_cloudwatch_log_group" "api" {
  name              = "/ecs/${local.prefix}/api"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_cloudwatch_log_group" "exec" {
  name              = "/ecs/${local.prefix}/exec"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_ecs_cluster" "main" {
  name = local.prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  # ECS Exec sessions (when enabled) are encrypted with the module's key and logged.
  configuration {
    execute_command_configuration {
      kms_key_id = aws_kms_key.main.arn
      logging    = "OVERRIDE"

      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.exec.name
      }
    }
  }
}

# ---------------------------------------------------------------------------------------------
# IAM: the execution role (ECS itself: pull the image, read the secrets, write logs) and the
# task role (the application's own AWS permissions: none, except ECS Exec when enabled).
# ---------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "execution" {
  name_prefix        = "${local.prefix}-exec-"
  description        = "ECS task execution role of ${local.prefix}: image pull, secrets, logs"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secrets" {
  statement {
    sid     = "ReadTheApiSecrets"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [
      aws_secretsmanager_secret.jwt.arn,
      aws_secretsmanager_secret.metrics_token.arn,
      aws_db_instance.main.master_user_secret[0].secret_arn,
    ]
  }

  statement {
    sid       = "DecryptThem"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "read-api-secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

resource "aws_iam_role" "task" {
  name_prefix        = "${local.prefix}-task-"
  description        = "Role of the ${local.prefix} API containers (no AWS access unless ECS Exec is on)"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "task_exec" {
  statement {
    sid = "EcsExecChannels"
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"] # these actions support no resource-level restriction
  }

  statement {
    sid       = "EcsExecSessionEncryption"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }

  statement {
    sid = "EcsExecSessionLogs"
    actions = [
      "logs:CreateLogStream",
      "logs:DescribeLogStreams",
      "logs:PutLogEvents",
    ]
    resources = ["${aws_cloudwatch_log_group.exec.arn}:*"]
  }

  statement {
    sid       = "EcsExecLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["*"] # DescribeLogGroups supports no resource-level restriction
  }
}

resource "aws_iam_role_policy" "task_exec" {
  count = var.enable_execute_command ? 1 : 0

  name   = "ecs-exec"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task_exec.json
}

# ---------------------------------------------------------------------------------------------
# Task definition and service
# ---------------------------------------------------------------------------------------------

resource "aws_ecs_task_definition" "api" {
  family                   = "${local.prefix}-api"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.task_cpu)
  memory                   = tostring(var.task_memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  # Task-local scratch space (Fargate ephemeral storage) mounted at /tmp.
  volume {
    name = "tmp"
  }

  container_definitions = jsonencode([local.api_container])

  lifecycle {
    precondition {
      condition     = local.fargate_memory_ok
      error_message = "task_memory is not a valid Fargate memory size for task_cpu (see https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size)."
    }
  }
}

resource "aws_ecs_service" "api" {
  name                    = "api"
  cluster                 = aws_ecs_cluster.main.id
  task_definition         = aws_ecs_task_definition.api.arn
  desired_count           = var.min_capacity
  launch_type             = "FARGATE"
  platform_version        = "LATEST"
  enable_execute_command  = var.enable_execute_command
  enable_ecs_managed_tags = true
  propagate_tags          = "SERVICE"

  # Time for the first health checks while a new task migrates (under the advisory lock).
  health_check_grace_period_seconds = 60

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  lifecycle {
    ignore_changes = [desired_count] # owned by auto scaling after the first apply
  }

  depends_on = [
    aws_lb_listener.https,
    aws_iam_role_policy.execution_secrets,
    aws_iam_role_policy_attachment.execution,
  ]
}

# ---------------------------------------------------------------------------------------------
# Auto scaling: target tracking on CPU and on ALB requests per task; the larger wins.
# ---------------------------------------------------------------------------------------------

resource "aws_appautoscaling_target" "api" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.api.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity

  lifecycle {
    precondition {
      condition     = var.max_capacity >= var.min_capacity
      error_message = "max_capacity must be at least min_capacity."
    }
  }
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${local.prefix}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_percent
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

resource "aws_appautoscaling_policy" "requests" {
  name               = "${local.prefix}-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.api.service_namespace
  resource_id        = aws_appautoscaling_target.api.resource_id
  scalable_dimension = aws_appautoscaling_target.api.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.requests_per_target
    scale_out_cooldown = 60
    scale_in_cooldown  = 300

    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.main.arn_suffix}/${aws_lb_target_group.api.arn_suffix}"
    }
  }
}
