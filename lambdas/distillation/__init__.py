"""Lambda function: distillation."""
