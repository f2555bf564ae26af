"""The Lambda code of the project, one import root (the folder ``lambdas/`` is every function's asset).

- ``shared``: what the router and the pipeline share (channels, the answer parser, prompts, model ids, the error a
  failed model call reaches the domain as); pure.
- ``contract``: what the stack, the state machine and the handlers agree on (run settings, errors, tags).
- ``pipeline``: the distillation pipeline's domain (queries, labeling, dataset, metrics, gate, report); pure.
- ``router``: the routing API's domain (settings, service, guards, cache, model selection); pure.
- ``adapters``: the AWS calls (boto3 clients, Bedrock, SSM, S3, the runtime-resource sweeper) and the one
  classification of AWS errors.
- ``handlers``: one module per Lambda function, thin: parse the event, call the domain, shape the answer; they
  compose the domain with the adapters.

The layering (``tests/unit/test_layering.py``): only ``adapters`` import boto3 or botocore; the domain packages
(``shared``, ``contract``, ``pipeline``, ``router``) import neither ``adapters`` nor ``handlers``; ``adapters``
import nothing of ``handlers`` but ``handlers.observability`` (the logger).
"""
