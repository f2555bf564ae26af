"""Lambda function: report."""
