"""The routing API's Lambda: ``POST /route`` → channel weights, never a 5xx for a model problem.

``handler`` is the thin Powertools entry point; the decision logic (model chain, retries, time budget, cache)
lives in ``service``, model selection from SSM in ``model_source``, the Bedrock calls in ``invoker``.
"""
