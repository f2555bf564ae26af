"""The parts of :class:`simulation.bedrock_fake.BedrockFake`, an in-memory Amazon Bedrock behind real boto3 clients.

From the bottom up (import each name from the module that defines it):

* :mod:`.values`: the account, Region and service names, and the public value types (requests a responder sees,
  replies and errors it returns).
* :mod:`.catalog`: the foundation models and inference profiles of the default catalog, and model identifiers.
* :mod:`.rules`: the request rules botocore does not check (names, tokens, model ids).
* :mod:`.stream`: the ConverseStream response stream.
* :mod:`.records`: the fake's internal records of jobs, models, deployments, evaluations and scripts.
* :mod:`.state`: what every operation shares: the stores, the scripting knobs, ids, idempotency, List pagination.
* one mixin per part of the API: :mod:`.catalog_handlers`, :mod:`.customization_handlers` (jobs and custom
  models), :mod:`.deployment_handlers`, :mod:`.evaluation_handlers`, :mod:`.tag_handlers`,
  :mod:`.runtime_handlers` (Converse, ConverseStream), and :mod:`.scripting` (scripted errors and failures).

:mod:`simulation.bedrock_fake` composes them and hooks the fake into botocore.
"""
