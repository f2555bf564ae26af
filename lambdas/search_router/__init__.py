"""The Lambda code of the project, one import root (the folder ``lambdas/`` is every function's asset).

- ``shared``: what the router and the pipeline share (channels, the answer parser, prompts, model ids); pure.
- ``contract``: what the stack, the state machine and the handlers agree on (run settings, errors, tags).
- ``pipeline``: the distillation pipeline's domain (queries, labeling, dataset, metrics, gate, report); pure.
- ``router``: the routing API's domain (settings, service, guards, cache, model selection).
- ``adapters``: the AWS calls (boto3 clients, Bedrock, S3, the runtime-resource sweeper).
- ``handlers``: one module per Lambda function, thin: parse the event, call the domain, shape the answer.
"""
