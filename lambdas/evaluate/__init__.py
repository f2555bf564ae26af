"""Lambda function: evaluate."""
