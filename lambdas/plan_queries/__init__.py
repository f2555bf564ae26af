"""Lambda function: plan_queries."""
