"""Lambda function: record_outputs."""
