# AWS WAF in front of the load balancer (on by default, create_waf_web_acl): AWS managed rule
# groups plus a per-IP rate limit on POST /auth/ (login, registration). Blocked and counted
# requests are logged, with the Authorization and Cookie headers redacted (bearer tokens).
# Bring your own web ACL with waf_web_acl_arn instead.

locals {
  create_waf = var.create_waf_web_acl && var.waf_web_acl_arn == null
}

resource "aws_wafv2_web_acl" "main" {
  count = local.create_waf ? 1 : 0

  name        = local.prefix
  description = "GoTicket API: AWS managed rules and a rate limit on POST /auth/"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  dynamic "rule" {
    for_each = var.waf_auth_rate_limit > 0 ? [var.waf_auth_rate_limit] : []
    content {
      name     = "auth-rate-limit-per-ip"
      priority = 1

      action {
        block {
          custom_response {
            response_code = 429

            response_header {
              name  = "Retry-After"
              value = "300"
            }
          }
        }
      }

      statement {
        rate_based_statement {
          limit                 = rule.value
          aggregate_key_type    = "IP"
          evaluation_window_sec = 300

          # POST /auth/login and /auth/register: each login costs an Argon2id hash (64 MiB).
          scope_down_statement {
            and_statement {
              statement {
                byte_match_statement {
                  search_string         = "/auth/"
                  positional_constraint = "STARTS_WITH"

                  field_to_match {
                    uri_path {}
                  }

                  text_transformation {
                    priority = 0
                    type     = "LOWERCASE"
                  }
                }
              }

              statement {
                byte_match_statement {
                  search_string         = "POST"
                  positional_constraint = "EXACTLY"

                  field_to_match {
                    method {}
                  }

                  text_transformation {
                    priority = 0
                    type     = "NONE"
                  }
                }
              }
            }
          }
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${local.prefix}-auth-rate-limit"
        sampled_requests_enabled   = true
      }
    }
  }

  rule {
    name     = "AWSManagedRulesAmazonIpReputationList"
    priority = 10

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesAmazonIpReputationList"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.prefix}-ip-reputation"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "AWSManagedRulesAnonymousIpList"
    priority = 20

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesAnonymousIpList"
        vendor_name = "AWS"

        # Hosting-provider addresses are counted, not blocked: server-side integrations and
        # uptime checks call the API from clouds. VPNs, Tor and other anonymisers are blocked.
        rule_action_override {
          name = "HostingProviderIPList"

          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.prefix}-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "AWSManagedRulesKnownBadInputsRuleSet" # incl. Log4j (CVE-2021-44228)
    priority = 30

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.prefix}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "AWSManagedRulesCommonRuleSet"
    priority = 40

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesCommonRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${local.prefix}-common"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = local.prefix
    sampled_requests_enabled   = true
  }
}

# The module's web ACL, or the one given in waf_web_acl_arn.
resource "aws_wafv2_web_acl_association" "alb" {
  count = var.waf_web_acl_arn != null || var.create_waf_web_acl ? 1 : 0

  resource_arn = aws_lb.main.arn
  web_acl_arn  = var.waf_web_acl_arn != null ? var.waf_web_acl_arn : aws_wafv2_web_acl.main[0].arn
}

# WAF requires the log group name to start with "aws-waf-logs-".
resource "aws_cloudwatch_log_group" "waf" {
  count = local.create_waf ? 1 : 0

  name              = "aws-waf-logs-${local.prefix}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_wafv2_web_acl_logging_configuration" "main" {
  count = local.create_waf ? 1 : 0

  resource_arn            = aws_wafv2_web_acl.main[0].arn
  log_destination_configs = [aws_cloudwatch_log_group.waf[0].arn]

  redacted_fields {
    single_header {
      name = "authorization"
    }
  }

  redacted_fields {
    single_header {
      name = "cookie"
    }
  }

  # Keep only what WAF blocked or counted: allowed traffic is in the ALB access logs already.
  logging_filter {
    default_behavior = "DROP"

    filter {
      behavior    = "KEEP"
      requirement = "MEETS_ANY"

      condition {
        action_condition {
          action = "BLOCK"
        }
      }

      condition {
        action_condition {
          action = "COUNT"
        }
      }
    }
  }
}
