"""Offline benchmarks of the project's domain code (no AWS account needed)."""
