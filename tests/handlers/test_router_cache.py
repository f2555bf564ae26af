"""The per-container answer cache: model answers only, keyed by model and reasoning, TTL and LRU bounded."""

from __future__ import annotations

from tests.handlers.router_harness import (
    FALLBACK,
    PRIMARY,
    VALID_ANSWER,
    RouterHarness,
    by_model,
    promotion,
)


def test_a_repeated_query_is_answered_from_the_cache_without_a_model_call(router: RouterHarness) -> None:
    first = router.route("sunset over snowy mountains")
    calls = router.model_calls()
    second = router.route("sunset over snowy mountains")
    assert router.model_calls() == calls
    assert second.body["source"] == "cache"
    assert second.body["model"] == PRIMARY
    assert second.body["weights"] == first.body["weights"]
    assert second.body["reasoning"] == first.body["reasoning"]
    assert router.metric("CacheHit") == 1


def test_the_cache_key_includes_include_reasoning(router: RouterHarness) -> None:
    router.route("sunset", include_reasoning=True)
    reply = router.route("sunset", include_reasoning=False)
    assert reply.body["source"] == "model"
    assert reply.body["reasoning"] is None
    assert router.route("sunset", include_reasoning=False).body["source"] == "cache"


def test_the_cache_key_includes_the_model(router: RouterHarness) -> None:
    router.bedrock.responder = by_model({PRIMARY: VALID_ANSWER, "us.amazon.nova-lite-v1:0": VALID_ANSWER})
    router.route("sunset")
    router.set_parameter(promotion("us.amazon.nova-lite-v1:0", "student"))
    router.clock.advance(31)
    reply = router.route("sunset")
    assert reply.body["source"] == "model"
    assert reply.body["model"] == "us.amazon.nova-lite-v1:0"


def test_fallback_answers_and_default_weights_are_not_cached(router: RouterHarness) -> None:
    router.bedrock.script_errors("ConverseStream", "AccessDeniedException", times=1, model_id=PRIMARY)
    assert router.route("sunset").body["source"] == "fallback_model"
    # the selected model is asked again (and answers) instead of replaying the fallback's answer
    assert router.route("sunset").body["source"] == "model"
    router.bedrock.script_errors("ConverseStream", "AccessDeniedException", times=2)
    assert router.route("thunder").body["source"] == "default"
    assert router.route("thunder").body["source"] == "model"
    assert len(router.calls("ConverseStream", FALLBACK)) == 2


def test_entries_expire_after_the_ttl(router: RouterHarness) -> None:
    router.configure(cache_ttl_seconds=60, model_ttl_seconds=600)
    router.route("sunset")
    router.clock.advance(59)
    assert router.route("sunset").body["source"] == "cache"
    router.clock.advance(2)
    assert router.route("sunset").body["source"] == "model"


def test_the_least_recently_used_entry_is_evicted_first(router: RouterHarness) -> None:
    router.configure(cache_size=2)
    router.route("a")
    router.route("b")
    router.route("a")  # a is now the most recently used
    router.route("c")  # evicts b
    assert router.route("a").body["source"] == "cache"
    assert router.route("b").body["source"] == "model"


def test_a_zero_size_disables_the_cache(router: RouterHarness) -> None:
    router.configure(cache_size=0)
    router.route("sunset")
    assert router.route("sunset").body["source"] == "model"
