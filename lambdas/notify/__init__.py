"""Lambda function: notify."""
