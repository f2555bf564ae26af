"""Lambda function: preflight."""
