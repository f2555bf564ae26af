"""Lambda function: promote."""
