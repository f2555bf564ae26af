"""Lambda function: label_shard."""
