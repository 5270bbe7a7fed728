# The internet-facing Application Load Balancer: HTTPS on 443 (TLS 1.2+), HTTP on 80 only to
# redirect, invalid headers dropped, access logs to S3.

locals {
  # Regions opened before August 2022 deliver ALB access logs from a regional ELB account
  # (aws_elb_service_account knows exactly these); newer ones from the log delivery service
  # principal. The bucket policy allows the principal everywhere and the account where it exists.
  elb_account_regions = toset([
    "af-south-1", "ap-east-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ca-central-1", "cn-north-1",
    "cn-northwest-1", "eu-central-1", "eu-north-1", "eu-south-1", "eu-west-1", "eu-west-2",
    "eu-west-3", "me-south-1", "sa-east-1", "us-east-1", "us-east-2", "us-gov-east-1",
    "us-gov-west-1", "us-west-1", "us-west-2",
  ])
  access_logs_prefix = "alb"
}

data "aws_elb_service_account" "main" {
  count = contains(local.elb_account_regions, var.aws_region) ? 1 : 0
}

# ---------------------------------------------------------------------------------------------
# Access log bucket
# ---------------------------------------------------------------------------------------------

resource "aws_s3_bucket" "access_logs" {
  #checkov:skip=CKV_AWS_145:ALB access log delivery supports only SSE-S3 (AES256) buckets, not SSE-KMS; the bucket is encrypted with SSE-S3 below.
  #checkov:skip=CKV_AWS_18:This is the log bucket: logging its own access would need yet another bucket (and that one's logs another); object writes come only from the ELB log delivery.
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost for access logs, which are diagnostic data, not a system of record; add replication if your compliance regime requires it.
  #checkov:skip=CKV2_AWS_62:Nothing consumes object-created events of access logs; notifications would have no subscriber.
  bucket_prefix = "${local.prefix}-alb-logs-"
  force_destroy = var.access_logs_force_destroy
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    object_ownership = "BucketOwnerEnforced" # ACLs off
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"

    filter {}

    expiration {
      days = var.access_logs_retention_days
    }

    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.access_logs]
}

data "aws_iam_policy_document" "access_logs" {
  statement {
    sid       = "LogDeliveryServicePrincipal"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/${local.access_logs_prefix}/AWSLogs/${local.account_id}/*"]
    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }

  dynamic "statement" {
    for_each = data.aws_elb_service_account.main
    content {
      sid       = "RegionalElbAccount"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.access_logs.arn}/${local.access_logs_prefix}/AWSLogs/${local.account_id}/*"]
      principals {
        type        = "AWS"
        identifiers = [statement.value.arn]
      }
    }
  }

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.access_logs.arn,
      "${aws_s3_bucket.access_logs.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  policy = data.aws_iam_policy_document.access_logs.json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}

# ---------------------------------------------------------------------------------------------
# Load balancer, target group, listeners
# ---------------------------------------------------------------------------------------------

resource "aws_lb" "main" {
  name_prefix        = substr(var.name, 0, 6) # AWS allows at most 6 characters here
  load_balancer_type = "application"
  internal           = false
  subnets            = aws_subnet.public[*].id
  security_groups    = [aws_security_group.alb.id]

  drop_invalid_header_fields = true
  desync_mitigation_mode     = "defensive"
  enable_deletion_protection = var.alb_deletion_protection
  enable_http2               = true
  idle_timeout               = var.alb_idle_timeout

  access_logs {
    enabled = true
    bucket  = aws_s3_bucket.access_logs.id
    prefix  = local.access_logs_prefix
  }

  tags = { Name = local.prefix }

  depends_on = [aws_s3_bucket_policy.access_logs]
}

resource "aws_lb_target_group" "api" {
  name_prefix          = substr(var.name, 0, 6)
  port                 = local.container_port
  protocol             = "HTTP"
  target_type          = "ip" # awsvpc networking: each Fargate task has its own address
  vpc_id               = aws_vpc.main.id
  deregistration_delay = 30 # in-flight requests finish well within GOTICKET_SHUTDOWN_GRACE (20 s)

  health_check {
    enabled             = true
    path                = var.health_check_path
    matcher             = "200"
    interval            = 15
    timeout             = 5
    healthy_threshold   = 2
    unhealthy_threshold = 3
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.main.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

resource "aws_lb_listener" "http_redirect" {
  load_balancer_arn = aws_lb.main.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type = "redirect"

    redirect {
      port        = "443"
      protocol    = "HTTPS"
      status_code = "HTTP_301"
    }
  }
}

# GET /metrics needs its bearer token anyway; by default the internet does not even reach it.
resource "aws_lb_listener_rule" "block_metrics" {
  count = var.block_metrics_path ? 1 : 0

  listener_arn = aws_lb_listener.https.arn
  priority     = 10

  condition {
    path_pattern {
      values = ["/metrics", "/metrics/*"]
    }
  }

  action {
    type = "fixed-response"

    fixed_response {
      content_type = "application/json"
      message_body = "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404}"
      status_code  = "404"
    }
  }
}
