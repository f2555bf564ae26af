"""Which model routes: the promotion the pipeline wrote to SSM, re-read after a short TTL.

The parameter's value is a :class:`search_router.contract.promotion.PromotionDocument` as JSON; this module
reads it forgivingly (fields it does not use are ignored) and checks what routing depends on.

A promotion takes effect within ``ttl_seconds`` without a redeploy. A broken value (not JSON, a bad field,
channels that are not the router's, a model ARN of another partition, Region or account) selects the
configured default model and reports the problem; an unreadable parameter keeps the last good selection (or
the default) until the next refresh. Nothing here raises to the caller.

Why the ARN check: whoever can write the parameter could otherwise point the router at a model billed to, or
logging into, another account (IAM allows only this account's deployments, but the check fails cheaply and
visibly instead of with an AccessDenied per request). Model ids that are not ARNs (foundation models,
inference profiles such as ``us.amazon.nova-micro-v1:0``) are this account's by construction.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from search_router.contract.promotion_rules import MicroRouterBlockError, read_micro_router
from search_router.router.micro_source import MicroRouterRef
from search_router.router.settings import AccountScope, ModelSpec
from search_router.shared.channels import ChannelSet

MAX_PARAMETER_CHARS = 8_192  # an SSM Standard parameter holds at most 4 KB; Advanced 8 KB


class PromotionProblem(StrEnum):
    """Why the parameter was not used (a metric dimension)."""

    INVALID_JSON = "invalid_json"
    INVALID_VALUE = "invalid_value"
    CHANNEL_MISMATCH = "channel_mismatch"
    FOREIGN_ARN = "foreign_arn"
    PARAMETER_NOT_FOUND = "parameter_not_found"
    PARAMETER_UNAVAILABLE = "parameter_unavailable"


class PromotionError(ValueError):
    def __init__(self, problem: PromotionProblem, detail: str) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem
        self.detail = detail


@dataclass(frozen=True)
class Promotion:
    """A usable promotion. ``micro`` is the micro-router it names, ``micro_problem`` why its ``micro_router``
    block was not usable (the model is still used: the block only adds the micro-router in front of it)."""

    model: ModelSpec
    run_id: str | None = None
    promoted_at: str | None = None
    micro: MicroRouterRef | None = None
    micro_problem: str | None = None


@dataclass(frozen=True)
class ModelSelection:
    """The model to route with now. ``problem``/``detail`` are set when the parameter could not be used;
    ``refreshed`` is True only for the call that (re)read the parameter, so a problem is reported once per TTL."""

    model: ModelSpec
    from_parameter: bool
    run_id: str | None = None
    problem: PromotionProblem | None = None
    detail: str | None = None
    refreshed: bool = False
    micro: MicroRouterRef | None = None
    micro_problem: str | None = None


class ParameterNotFound(LookupError):
    """The promotion parameter does not exist (nothing was promoted yet)."""


class ParameterUnavailable(Exception):
    """The promotion parameter could not be read this time (throttling, permissions, the network ...)."""


def foreign_arn_problem(model_id: str, scope: AccountScope) -> str | None:
    """Why ``model_id`` may not be called from ``scope``, or None: not an ARN, or
    ``arn:<partition>:bedrock:<region>:<account>:<resource>`` of the router's own partition, Region and account."""
    if not model_id.startswith("arn:"):
        return None
    parts = model_id.split(":", 5)
    if len(parts) < 6 or not parts[5]:
        return "the model id starts with 'arn:' but is not an ARN (arn:partition:service:region:account:resource)"
    _, partition, service, region, account, _resource = parts
    found = AccountScope(partition=partition, region=region, account_id=account)
    if service != "bedrock":
        return f"the model ARN is of service {service!r}, not bedrock"
    if found != scope:
        return f"the model ARN is of {found.describe()}; the router runs in {scope.describe()}"
    return None


def parse_promotion(value: str, channels: ChannelSet, scope: AccountScope | None = None) -> Promotion:
    """Validate the parameter's value; :class:`PromotionError` says what is wrong. With ``scope``, a model ARN
    must be of that partition, Region and account."""
    if len(value) > MAX_PARAMETER_CHARS:
        raise PromotionError(PromotionProblem.INVALID_VALUE, f"the value has {len(value)} characters")
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise PromotionError(PromotionProblem.INVALID_JSON, f"{exc.msg} at position {exc.pos}") from None
    if not isinstance(data, dict):
        raise PromotionError(
            PromotionProblem.INVALID_VALUE, f"the value is a JSON {type(data).__name__}, not an object"
        )
    try:
        model = ModelSpec.parse("parameter", data)
    except ValueError as exc:
        raise PromotionError(PromotionProblem.INVALID_VALUE, str(exc)) from None
    problem = foreign_arn_problem(model.model_id, scope) if scope is not None else None
    if problem is not None:
        raise PromotionError(PromotionProblem.FOREIGN_ARN, problem)
    named = data.get("channels")
    if not isinstance(named, list) or not all(isinstance(n, str) for n in named):
        raise PromotionError(PromotionProblem.INVALID_VALUE, "parameter.channels must be a list of channel names")
    if sorted(named) != sorted(channels.names):
        raise PromotionError(
            PromotionProblem.CHANNEL_MISMATCH,
            f"the promoted model routes to {named}, the router serves {list(channels.names)}",
        )
    micro, micro_problem = _micro_router(data.get("micro_router"))
    return Promotion(
        model=model,
        run_id=_optional_str(data.get("run_id")),
        promoted_at=_optional_str(data.get("promoted_at")),
        micro=micro,
        micro_problem=micro_problem,
    )


def _micro_router(value: Any) -> tuple[MicroRouterRef | None, str | None]:
    """The promoted micro-router, or why the ``micro_router`` block cannot be used (absent or null: none)."""
    if value is None:
        return None, None
    try:
        artifact_uri, tau = read_micro_router(value)
    except MicroRouterBlockError as exc:
        return None, str(exc)
    return MicroRouterRef(artifact_uri=artifact_uri, tau=tau), None


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class PromotedModelSource:
    """Reads the promotion parameter at most once per ``ttl_seconds`` (``clock`` is injectable).

    ``read_parameter`` returns the parameter's value, or raises :class:`ParameterNotFound` or
    :class:`ParameterUnavailable` (:func:`search_router.adapters.ssm.parameter_reader` reads it from SSM)."""

    def __init__(
        self,
        *,
        parameter_name: str,
        channels: ChannelSet,
        default_model: ModelSpec,
        ttl_seconds: float,
        read_parameter: Callable[[], str],
        clock: Callable[[], float],
        scope: AccountScope | None = None,
    ) -> None:
        self._parameter_name = parameter_name
        self._channels = channels
        self._scope = scope
        self._default = default_model
        self._ttl = ttl_seconds
        self._read_parameter = read_parameter
        self._clock = clock
        self._lock = threading.Lock()
        self._selection: ModelSelection | None = None
        self._last_good: ModelSelection | None = None
        self._expires = 0.0

    def current(self) -> ModelSelection:
        with self._lock:
            now = self._clock()
            if self._selection is not None and now < self._expires:
                return self._selection
            selection = self._read()
            self._selection = replace(selection, refreshed=False)
            self._expires = now + self._ttl
            return selection

    def _read(self) -> ModelSelection:
        try:
            promotion = parse_promotion(self._read_parameter(), self._channels, self._scope)
        except PromotionError as error:
            return self._default_selection(error.problem, error.detail)
        except ParameterNotFound:
            return self._default_selection(PromotionProblem.PARAMETER_NOT_FOUND, self._parameter_name)
        except ParameterUnavailable as error:
            return self._keep_last(str(error))
        selection = ModelSelection(
            model=promotion.model,
            from_parameter=True,
            run_id=promotion.run_id,
            refreshed=True,
            micro=promotion.micro,
            micro_problem=promotion.micro_problem,
        )
        self._last_good = selection
        return selection

    def _default_selection(self, problem: PromotionProblem, detail: str) -> ModelSelection:
        return ModelSelection(model=self._default, from_parameter=False, problem=problem, detail=detail, refreshed=True)

    def _keep_last(self, detail: str) -> ModelSelection:
        base = self._last_good or ModelSelection(model=self._default, from_parameter=False)
        return replace(base, problem=PromotionProblem.PARAMETER_UNAVAILABLE, detail=detail, refreshed=True)
