"""The AWS calls: boto3 clients, Bedrock, S3 and the sweeper of runtime resources."""
