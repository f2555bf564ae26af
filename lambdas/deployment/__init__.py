"""Lambda function: deployment."""
