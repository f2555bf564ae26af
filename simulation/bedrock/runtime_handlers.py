"""The runtime: Converse and ConverseStream, answered by the responder."""

from __future__ import annotations

import copy
import time
from typing import Any

from simulation.bedrock.catalog import profile_id_of
from simulation.bedrock.state import FakeState
from simulation.bedrock.stream import FakeEventStream
from simulation.bedrock.values import ConverseReply, ConverseRequest, FakeError, FakeServiceError


class RuntimeHandlers(FakeState):
    """``Converse`` and ``ConverseStream`` (the knobs: ``responder``, ``delay_s``, ``stream_chunk_chars``,
    ``stream_event_delay_s``)."""

    def _resolve_invocation_target(self, model_id: str) -> str:
        """What ``modelId`` names, or the error the service gives for it."""
        with self._lock:
            if ":custom-model-deployment/" in model_id:
                deployment = self._deployments.get(model_id)
                if deployment is None:
                    raise FakeServiceError("ResourceNotFoundException", f"Deployment {model_id} not found.")
                if deployment.status != "Active":
                    raise FakeServiceError(
                        "ValidationException",
                        f"Deployment {model_id} is {deployment.status}; it can serve requests once Active.",
                    )
                return "deployment"
            if ":custom-model/" in model_id:
                raise FakeServiceError(
                    "ValidationException",
                    f"Custom model {model_id} can't be invoked on demand: invoke its custom model deployment ARN.",
                )
            if self._profiles.get(profile_id_of(model_id)) is not None:
                return "inference-profile"
            model = self._find_foundation_model(model_id)
        if model is None:
            raise FakeServiceError("ValidationException", "The provided model identifier is invalid.")
        if "ON_DEMAND" not in model.inference_types:
            raise FakeServiceError(
                "ValidationException",
                f"Invocation of model ID {model.model_id} with on-demand throughput isn't supported. Retry your "
                "request with the ID or ARN of an inference profile that contains this model.",
            )
        return "foundation-model"

    def _converse_request(self, operation: str, params: dict[str, Any]) -> ConverseRequest:
        target = self._resolve_invocation_target(params["modelId"])
        messages = params.get("messages") or []
        if not messages or messages[-1]["role"] != "user":
            raise FakeServiceError(
                "ValidationException", "A conversation must end with a user message. Add a user message."
            )
        config = params.get("inferenceConfig", {})
        for key in ("temperature", "topP"):
            if key in config and not 0.0 <= config[key] <= 1.0:
                raise FakeServiceError(
                    "ValidationException", f"inferenceConfig.{key} must be between 0 and 1, got {config[key]}"
                )
        return ConverseRequest(
            operation=operation,
            model_id=params["modelId"],
            target_kind=target,
            system_text="\n".join(block["text"] for block in params.get("system", []) if "text" in block),
            user_text="\n".join(block["text"] for block in messages[-1]["content"] if "text" in block),
            inference_config=copy.deepcopy(config),
            params=params,
        )

    def _respond(self, request: ConverseRequest) -> ConverseReply:
        """Run the responder (outside the lock, after ``delay_s``) and normalize its answer."""
        started = time.perf_counter()
        if self.delay_s:
            time.sleep(self.delay_s)
        result = self.responder(request)
        if isinstance(result, FakeError):
            raise FakeServiceError(result.code, result.message)
        if isinstance(result, BaseException):
            raise result
        reply = ConverseReply(text=result) if isinstance(result, str) else result
        elapsed_ms = max(1, round((time.perf_counter() - started) * 1000))
        prompt_chars = len(request.system_text) + len(request.user_text)
        return ConverseReply(
            text=reply.text,
            input_tokens=reply.input_tokens if reply.input_tokens is not None else max(1, prompt_chars // 4),
            output_tokens=reply.output_tokens if reply.output_tokens is not None else max(1, len(reply.text) // 4),
            latency_ms=reply.latency_ms if reply.latency_ms is not None else elapsed_ms,
            stop_reason=reply.stop_reason,
        )

    @staticmethod
    def _usage(reply: ConverseReply) -> dict[str, int]:
        assert reply.input_tokens is not None and reply.output_tokens is not None
        return {
            "inputTokens": reply.input_tokens,
            "outputTokens": reply.output_tokens,
            "totalTokens": reply.input_tokens + reply.output_tokens,
        }

    def _converse(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._converse_body(self._respond(self._converse_request("Converse", params)))

    def _converse_body(self, reply: ConverseReply) -> dict[str, Any]:
        """The Converse response body for ``reply`` (also a Converse batch record's ``modelOutput``)."""
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": reply.text}]}},
            "stopReason": reply.stop_reason,
            "usage": self._usage(reply),
            "metrics": {"latencyMs": reply.latency_ms},
        }

    def _converse_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        reply = self._respond(self._converse_request("ConverseStream", params))
        size = max(1, self.stream_chunk_chars)
        chunks = [reply.text[i : i + size] for i in range(0, len(reply.text), size)] or [""]
        events: list[dict[str, Any]] = [{"messageStart": {"role": "assistant"}}]
        events += [{"contentBlockDelta": {"delta": {"text": c}, "contentBlockIndex": 0}} for c in chunks]
        events += [
            {"contentBlockStop": {"contentBlockIndex": 0}},
            {"messageStop": {"stopReason": reply.stop_reason}},
            {"metadata": {"usage": self._usage(reply), "metrics": {"latencyMs": reply.latency_ms}}},
        ]
        stream_shape = self._runtime.meta.service_model.shape_for("ConverseStreamOutput")
        for event in events:
            report = self._validator.validate(event, stream_shape)
            if report.has_errors():
                raise AssertionError(f"BedrockFake built an invalid stream event:\n{report.generate_report()}")
        with self._lock:
            error, after = self._stream_errors.pop(0) if self._stream_errors else (None, 0)
            stream = FakeEventStream(
                events, event_delay_s=self.stream_event_delay_s, error=error, error_after_events=after
            )
            self.streams.append(stream)
        return {"stream": stream}
