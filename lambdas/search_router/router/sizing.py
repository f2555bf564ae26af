"""How large the router's call pool is: enough threads that calls abandoned after their deadline cannot starve a
healthy request (the pool is :class:`search_router.adapters.bedrock_runtime.BedrockInvoker`'s, and its client keeps
one pooled connection per thread)."""

from __future__ import annotations

from typing import Final

from search_router.router.settings import RouterSettings

MIN_INVOKER_THREADS: Final = 8
# Requests whose abandoned calls can still hold a thread while a new request runs (see invoker_threads).
ABANDONING_REQUESTS: Final = 3


def max_chain_length(settings: RouterSettings) -> int:
    """The longest model chain a request can walk: a promoted model, the default model, the fallbacks."""
    return 2 + len(settings.fallback_models)


def invoker_threads(settings: RouterSettings) -> int:
    """Threads enough that calls abandoned after their deadline cannot starve a healthy request.

    A request abandons at most one call per model of its chain (a timeout is not retried on the same model).
    An abandoned call holds its thread until botocore gives up: at most connect_timeout + read_timeout after it
    started (``router_client_config``), that is under 2 x ``call_timeout_ms``. Every request that abandons
    a call has waited at least ``call_timeout_ms`` itself (the first timed-out call of a request has its full
    call timeout, or the request already spent that much of its budget), so while one request runs, calls of
    at most :data:`ABANDONING_REQUESTS` requests (the current one included) can still be alive. Threads are
    started only when needed: a pool this size costs nothing until a burst of slow calls needs it.
    """
    return max(MIN_INVOKER_THREADS, ABANDONING_REQUESTS * max_chain_length(settings) + 1)
