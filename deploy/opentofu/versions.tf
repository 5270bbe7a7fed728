terraform {
  # OpenTofu >= 1.6 or Terraform >= 1.6 (validation blocks, moved/import blocks, optional()).
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.60"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  # The state holds the generated JWT key and metrics token (see README, "Secrets and state"):
  # keep it in an encrypted, access-controlled backend, e.g. add in a backend.tf of your own
  #   backend "s3" { bucket = "...", key = "goticket/prod.tfstate", region = "...", encrypt = true, use_lockfile = true }
  # or use OpenTofu's state encryption.
}

provider "aws" {
  region = var.aws_region

  default_tags {
    tags = merge(var.tags, {
      Application = var.name
      Environment = var.environment
      ManagedBy   = "opentofu"
    })
  }
}
