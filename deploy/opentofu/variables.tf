# ---------------------------------------------------------------------------------------------
# General
# ---------------------------------------------------------------------------------------------

variable "aws_region" {
  description = "AWS region to deploy into, e.g. eu-central-1."
  type        = string
  default     = "eu-central-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region must look like an AWS region name, e.g. eu-central-1."
  }
}

variable "name" {
  description = "Name prefix for every resource (lower case letters, digits and dashes, at most 20 characters)."
  type        = string
  default     = "goticket"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name))
    error_message = "name must start with a letter and hold 2-20 lower case letters, digits or dashes."
  }
}

variable "environment" {
  description = "Environment name (prod, staging, ...), added to the resource names and tags."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lower case letters or digits, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every resource (merged into the provider's default_tags)."
  type        = map(string)
  default     = {}
}

# ---------------------------------------------------------------------------------------------
# Network
# ---------------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the new VPC (a /18 or larger): six subnets of 1/16 of it each, public, private and database in two AZs."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 18
    error_message = "vpc_cidr must be a valid IPv4 CIDR block of size /18 or larger."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for both availability zones (cheaper, but an AZ outage cuts the other AZ's egress) instead of one per AZ."
  type        = bool
  default     = false
}

variable "availability_zones" {
  description = "The two availability zone names to use, e.g. [\"eu-central-1a\", \"eu-central-1b\"]; empty takes the region's first two available zones. Pin them in production: AZ names map to different physical zones per account."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || length(var.availability_zones) == 2
    error_message = "availability_zones must be empty or hold exactly two zone names."
  }
}

variable "flow_logs_retention_days" {
  description = "Retention of the VPC flow logs in CloudWatch Logs, days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_logs_retention_days)
    error_message = "flow_logs_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ..., 365, 731, ..., 3653)."
  }
}

# ---------------------------------------------------------------------------------------------
# Load balancer
# ---------------------------------------------------------------------------------------------

variable "certificate_arn" {
  description = "ARN of the ACM certificate for the HTTPS listener (in the same region), covering the API's host name."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/.+$", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)."
  }
}

variable "ssl_policy" {
  description = "TLS security policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "alb_ingress_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the load balancer on ports 80 and 443."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.alb_ingress_cidrs) > 0 && alltrue([for cidr in var.alb_ingress_cidrs : can(cidrhost(cidr, 0))])
    error_message = "alb_ingress_cidrs must be a non-empty list of valid IPv4 CIDR blocks."
  }
}

variable "alb_deletion_protection" {
  description = "Protect the load balancer against deletion (set false before a tofu destroy)."
  type        = bool
  default     = true
}

variable "alb_idle_timeout" {
  description = "Seconds the load balancer keeps an idle connection open."
  type        = number
  default     = 60

  validation {
    condition     = var.alb_idle_timeout >= 1 && var.alb_idle_timeout <= 4000
    error_message = "alb_idle_timeout must be between 1 and 4000 seconds."
  }
}

variable "access_logs_retention_days" {
  description = "Days the load balancer access logs are kept in their S3 bucket."
  type        = number
  default     = 365

  validation {
    condition     = var.access_logs_retention_days >= 1
    error_message = "access_logs_retention_days must be at least 1."
  }
}

variable "access_logs_force_destroy" {
  description = "Let tofu destroy delete the access log bucket even when it still holds logs."
  type        = bool
  default     = false
}

variable "create_waf_web_acl" {
  description = "Create a WAFv2 web ACL for the load balancer: AWS managed rule groups (common, known bad inputs incl. Log4j, IP reputation, anonymous IPs) and a per-IP rate limit on POST /auth/. Ignored when waf_web_acl_arn is set."
  type        = bool
  default     = true
}

variable "waf_web_acl_arn" {
  description = "ARN of an existing WAFv2 web ACL (REGIONAL scope) to attach instead of the module's own; null uses the module's (if create_waf_web_acl)."
  type        = string
  default     = null

  validation {
    condition     = var.waf_web_acl_arn == null || can(regex("^arn:aws[a-z-]*:wafv2:", var.waf_web_acl_arn))
    error_message = "waf_web_acl_arn must be null or a WAFv2 web ACL ARN."
  }
}

variable "waf_auth_rate_limit" {
  description = "Most POST requests to /auth/ (login, register) one IP address may send in 5 minutes before the module's WAF blocks it; 0 turns the rule off."
  type        = number
  default     = 300

  validation {
    condition     = var.waf_auth_rate_limit == 0 || (var.waf_auth_rate_limit >= 10 && var.waf_auth_rate_limit <= 2000000000)
    error_message = "waf_auth_rate_limit must be 0 (off) or between 10 and 2,000,000,000."
  }
}

variable "block_metrics_path" {
  description = "Answer 404 at the load balancer for /metrics, so Prometheus metrics are reachable only from inside the VPC (the endpoint also needs its bearer token)."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Service (ECS Fargate)
# ---------------------------------------------------------------------------------------------

variable "image" {
  description = "Container image of the API, e.g. 123456789012.dkr.ecr.eu-central-1.amazonaws.com/goticket@sha256:... (pin a digest or an immutable tag)."
  type        = string

  validation {
    condition     = length(trimspace(var.image)) > 0 && !endswith(var.image, ":latest")
    error_message = "image must be set, and not to a mutable :latest tag."
  }
}

variable "container_command" {
  description = "Command of the API container; null keeps the image's default (which must run `goticket serve`)."
  type        = list(string)
  default     = null
}

variable "container_health_check_command" {
  description = "Container health check command (ECS syntax); the default asks GET /healthz with the image's python3, since slim images have no curl."
  type        = list(string)
  default = [
    "CMD",
    "python3",
    "-c",
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)",
  ]

  validation {
    condition     = length(var.container_health_check_command) >= 2 && contains(["CMD", "CMD-SHELL"], var.container_health_check_command[0])
    error_message = "container_health_check_command must start with CMD or CMD-SHELL."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the Fargate tasks: X86_64, or ARM64 (Graviton, about 20 % cheaper; the image must be built for arm64)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "task_cpu" {
  description = "CPU units of one task (1024 = 1 vCPU)."
  type        = number
  default     = 1024

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.task_cpu)
    error_message = "task_cpu must be a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "task_memory" {
  description = "Memory of one task, MiB; must be a valid Fargate combination with task_cpu (1024 CPU: 2048-8192)."
  type        = number
  default     = 2048

  validation {
    condition     = var.task_memory >= 512 && var.task_memory <= 122880 && var.task_memory % 512 == 0
    error_message = "task_memory must be a multiple of 512 MiB between 512 and 122880."
  }
}

variable "app_workers" {
  description = "API worker processes per task (GOTICKET_WORKERS); about one per vCPU."
  type        = number
  default     = 1

  validation {
    condition     = var.app_workers >= 1 && var.app_workers <= 64
    error_message = "app_workers must be between 1 and 64."
  }
}

variable "db_pool_max" {
  description = "Database connections per worker process (GOTICKET_DB_POOL_MAX). max_capacity x app_workers x db_pool_max must stay below the instance's max_connections."
  type        = number
  default     = 16

  validation {
    condition     = var.db_pool_max >= 1 && var.db_pool_max <= 500
    error_message = "db_pool_max must be between 1 and 500."
  }
}

variable "log_level" {
  description = "Log level of the API (GOTICKET_LOG_LEVEL)."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "extra_environment" {
  description = "Further plain environment variables of the API container (e.g. GOTICKET_ENGINE_QUEUE_LIMIT); never secrets."
  type        = map(string)
  default     = {}

  validation {
    condition = length(setintersection(keys(var.extra_environment), [
      "GOTICKET_DATABASE_URL", "GOTICKET_JWT_SECRET", "GOTICKET_METRICS_TOKEN", "PGPASSWORD",
    ])) == 0
    error_message = "extra_environment must not set the database URL or any secret: the module injects those."
  }
}

variable "enable_execute_command" {
  description = "Allow ECS Exec into the API tasks (aws ecs execute-command), e.g. to create the first admin. The SSM agent needs a writable root file system, so this also turns readonlyRootFilesystem off; leave false except while you need it."
  type        = bool
  default     = false
}

variable "min_capacity" {
  description = "Fewest running API tasks (auto scaling floor; also the initial desired count). Keep at least 2 for one per AZ."
  type        = number
  default     = 2

  validation {
    condition     = var.min_capacity >= 1
    error_message = "min_capacity must be at least 1."
  }
}

variable "max_capacity" {
  description = "Most running API tasks (auto scaling ceiling)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_capacity >= 1 && var.max_capacity <= 1000
    error_message = "max_capacity must be between 1 and 1000 (and at least min_capacity)."
  }
}

variable "cpu_target_percent" {
  description = "Target average CPU utilisation of the service, percent (target tracking)."
  type        = number
  default     = 60

  validation {
    condition     = var.cpu_target_percent >= 10 && var.cpu_target_percent <= 90
    error_message = "cpu_target_percent must be between 10 and 90."
  }
}

variable "requests_per_target" {
  description = "Target ALB requests per task per minute (ALBRequestCountPerTarget target tracking)."
  type        = number
  default     = 6000

  validation {
    condition     = var.requests_per_target >= 1
    error_message = "requests_per_target must be positive."
  }
}

variable "health_check_path" {
  description = "Path of the load balancer's target health check. /healthz (liveness) by default: with /readyz a database outage would make ECS replace every task at once."
  type        = string
  default     = "/healthz"

  validation {
    condition     = startswith(var.health_check_path, "/")
    error_message = "health_check_path must start with /."
  }
}

variable "log_retention_days" {
  description = "Retention of the API's CloudWatch log group, days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, ..., 365, 731, ..., 3653)."
  }
}

# ---------------------------------------------------------------------------------------------
# Database (RDS PostgreSQL 16)
# ---------------------------------------------------------------------------------------------

variable "db_instance_class" {
  description = "RDS instance class. Performance Insights needs at least db.t4g.medium / db.t3.medium."
  type        = string
  default     = "db.t4g.medium"

  validation {
    condition     = startswith(var.db_instance_class, "db.")
    error_message = "db_instance_class must be an RDS instance class such as db.t4g.medium or db.m7g.large."
  }
}

variable "db_engine_version" {
  description = "PostgreSQL engine version: a major version (16, AWS picks the newest minor) or a full one (16.4). Must stay 16.x: the parameter group family is postgres16."
  type        = string
  default     = "16"

  validation {
    condition     = can(regex("^16(\\.[0-9]+)?$", var.db_engine_version))
    error_message = "db_engine_version must be 16 or 16.x."
  }
}

variable "db_name" {
  description = "Name of the database the API uses."
  type        = string
  default     = "goticket"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.db_name))
    error_message = "db_name must start with a letter and hold lower case letters, digits or underscores (at most 63)."
  }
}

variable "db_username" {
  description = "Master user name; its password is generated and kept by RDS in Secrets Manager."
  type        = string
  default     = "goticket"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.db_username)) && !contains(["postgres", "rdsadmin", "admin"], var.db_username)
    error_message = "db_username must start with a letter, hold lower case letters, digits or underscores, and not be a reserved name."
  }
}

variable "db_allocated_storage" {
  description = "Initial storage of the database, GiB (gp3)."
  type        = number
  default     = 20

  validation {
    condition     = var.db_allocated_storage >= 20 && var.db_allocated_storage <= 65536
    error_message = "db_allocated_storage must be between 20 and 65536 GiB."
  }
}

variable "db_max_allocated_storage" {
  description = "Ceiling for storage autoscaling, GiB (0 turns storage autoscaling off)."
  type        = number
  default     = 200

  validation {
    condition     = var.db_max_allocated_storage == 0 || var.db_max_allocated_storage >= 20
    error_message = "db_max_allocated_storage must be 0 or at least 20 (and at least db_allocated_storage)."
  }
}

variable "db_multi_az" {
  description = "Run a synchronous standby in the second AZ (automatic failover; doubles the instance cost)."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups and point-in-time recovery."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 1 and 35."
  }
}

variable "db_deletion_protection" {
  description = "Protect the database against deletion (set false, apply, then destroy)."
  type        = bool
  default     = true
}

variable "db_skip_final_snapshot" {
  description = "Skip the final snapshot when the database is destroyed (only for throw-away environments)."
  type        = bool
  default     = false
}

variable "db_performance_insights_retention_days" {
  description = "Performance Insights retention, days: 7 (free tier), a multiple of 31 up to 713, or 731."
  type        = number
  default     = 7

  validation {
    condition = (
      var.db_performance_insights_retention_days == 7 ||
      var.db_performance_insights_retention_days == 731 ||
      (var.db_performance_insights_retention_days % 31 == 0 && var.db_performance_insights_retention_days <= 713 && var.db_performance_insights_retention_days > 0)
    )
    error_message = "db_performance_insights_retention_days must be 7, a multiple of 31 up to 713, or 731."
  }
}

variable "db_monitoring_interval" {
  description = "Enhanced Monitoring interval, seconds (0 turns it off)."
  type        = number
  default     = 60

  validation {
    condition     = contains([0, 1, 5, 10, 15, 30, 60], var.db_monitoring_interval)
    error_message = "db_monitoring_interval must be 0, 1, 5, 10, 15, 30 or 60."
  }
}

variable "db_iam_authentication" {
  description = "Enable IAM database authentication (for people and tools; the API itself logs in with the master password)."
  type        = bool
  default     = true
}

variable "db_slow_query_ms" {
  description = "Log statements slower than this many milliseconds (log_min_duration_statement; -1 turns it off)."
  type        = number
  default     = 500

  validation {
    condition     = var.db_slow_query_ms >= -1
    error_message = "db_slow_query_ms must be -1 or more."
  }
}

variable "redeploy_on_db_secret_rotation" {
  description = "After RDS rotates the master password secret, force a new deployment of the service (EventBridge rule + Step Functions), so that new tasks read the new password."
  type        = bool
  default     = true
}
