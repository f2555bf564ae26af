"""Lambda function: judge."""
