"""Handler-side helpers shared by the pipeline functions: Powertools objects, S3 I/O, run layout, errors."""
