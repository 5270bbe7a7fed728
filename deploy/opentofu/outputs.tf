output "alb_dns_name" {
  description = "DNS name of the load balancer: point the API's host name at it (Route 53 alias or CNAME)."
  value       = aws_lb.main.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone id of the load balancer, for a Route 53 alias record."
  value       = aws_lb.main.zone_id
}

output "alb_arn" {
  description = "ARN of the load balancer."
  value       = aws_lb.main.arn
}

output "access_logs_bucket" {
  description = "S3 bucket receiving the load balancer's access logs (under alb/AWSLogs/)."
  value       = aws_s3_bucket.access_logs.id
}

output "vpc_id" {
  description = "Id of the VPC."
  value       = aws_vpc.main.id
}

output "public_subnet_ids" {
  description = "Ids of the public subnets (load balancer, NAT gateways)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Ids of the private subnets (API tasks); use them for one-off tasks (aws ecs run-task)."
  value       = aws_subnet.private[*].id
}

output "database_subnet_ids" {
  description = "Ids of the database subnets (no route out of the VPC)."
  value       = aws_subnet.database[*].id
}

output "task_security_group_id" {
  description = "Security group of the API tasks; give it to one-off tasks (aws ecs run-task) so they may reach the database."
  value       = aws_security_group.tasks.id
}

output "ecs_cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.main.name
}

output "ecs_service_name" {
  description = "Name of the ECS service running the API."
  value       = aws_ecs_service.api.name
}

output "task_definition_arn" {
  description = "ARN (with revision) of the API task definition; also usable for a one-off `goticket migrate` task."
  value       = aws_ecs_task_definition.api.arn
}

output "container_name" {
  description = "Name of the API container in the task definition (for run-task overrides)."
  value       = local.container_name
}

output "log_group_name" {
  description = "CloudWatch log group of the API containers."
  value       = aws_cloudwatch_log_group.api.name
}

output "db_endpoint" {
  description = "Address and port of the PostgreSQL instance (reachable only from the API tasks)."
  value       = aws_db_instance.main.endpoint
}

output "db_instance_identifier" {
  description = "Identifier of the RDS instance."
  value       = aws_db_instance.main.identifier
}

output "db_master_user_secret_arn" {
  description = "ARN of the RDS-managed Secrets Manager secret holding the master user name and password."
  value       = aws_db_instance.main.master_user_secret[0].secret_arn
}

output "database_url" {
  description = "GOTICKET_DATABASE_URL given to the API: no password in it (the tasks get PGPASSWORD from the RDS-managed secret)."
  value       = local.db_url
}

output "jwt_secret_arn" {
  description = "ARN of the Secrets Manager secret holding GOTICKET_JWT_SECRET."
  value       = aws_secretsmanager_secret.jwt.arn
}

output "metrics_token_secret_arn" {
  description = "ARN of the Secrets Manager secret holding GOTICKET_METRICS_TOKEN (give it to the Prometheus scraper)."
  value       = aws_secretsmanager_secret.metrics_token.arn
}

output "kms_key_arn" {
  description = "ARN of the customer managed KMS key encrypting the secrets, the database and the log groups."
  value       = aws_kms_key.main.arn
}
