"""Lambda function: prepare_dataset."""
