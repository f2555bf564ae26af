"""Stack-delete cleanup of the run-time Bedrock resources the pipeline created (a custom resource)."""
