"""The project's command line: start a pipeline run, watch it, read its report, call the router, estimate costs
and roll back a promotion, all found through the deployed stack's CloudFormation outputs.

Run it from the repository root with the project's virtualenv: ``.venv/bin/python -m cli --help``.
"""
