"""Reading the request body safely: every body the router cannot read is a 400 that says why, never an
internal error (the default weights) and never a crash.

The router's handler reads bodies with these functions (``handlers/router_api.handle``). Why they exist, from
what Powertools' resolver did with a body and what broke it (Powertools 3, ``BaseProxyEvent``):
``decoded_body`` base64-decodes when ``isBase64Encoded`` (``binascii.Error`` on garbage) and decodes UTF-8
(``UnicodeDecodeError``); ``json_body`` then calls the resolver's ``json_body_deserializer``, where
``json.loads`` raises ``RecursionError`` on deep nesting and ``ValueError`` on an integer longer than
``sys.get_int_max_str_digits()`` digits. Only ``JSONDecodeError`` is turned into a validation error there; the
rest would reach the catch-all handler. :func:`decode_body` and :func:`parse_json_body` raise
:class:`UnreadableBodyError` instead, which the handler answers with a 400.

The content type is compared case-insensitively (RFC 9110: ``Application/JSON; charset=UTF-8`` is JSON):
:func:`media_type`.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Mapping
from typing import Any, Final

MAX_JSON_DEPTH: Final = 32  # a route request is one flat object; anything this deep is not one
CONTENT_TYPE: Final = "content-type"


class UnreadableBodyError(Exception):
    """The body cannot be read as JSON text; ``message`` says why (it never quotes the body)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def decode_body(body: str | None, *, base64_encoded: bool) -> str | None:
    """The body as text: base64-decoded (strictly) when API Gateway says it is encoded, then UTF-8."""
    if not base64_encoded or not body:
        return body
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise UnreadableBodyError("is marked base64-encoded (isBase64Encoded) but is not valid base64") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UnreadableBodyError(f"is not UTF-8 text (invalid byte at position {error.start})") from None


def parse_json_body(text: str) -> Any:
    """``json.loads`` with limits: :class:`UnreadableBodyError` for nesting deeper than :data:`MAX_JSON_DEPTH`
    or an integer too long to convert; ``json.JSONDecodeError`` (Powertools' "not valid JSON") otherwise."""
    if _may_be_deep(text) and _depth(text) > MAX_JSON_DEPTH:
        raise UnreadableBodyError(f"is nested more than {MAX_JSON_DEPTH} levels deep")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise
    except RecursionError:  # the depth check makes this unreachable; kept in case the limit is raised
        raise UnreadableBodyError(f"is nested more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError:  # json.loads raises nothing else: int() refused a number with too many digits
        limit = sys.get_int_max_str_digits()
        raise UnreadableBodyError(f"holds an integer longer than {limit} digits") from None


def media_type(event: Mapping[str, Any]) -> str:
    """The request's ``Content-Type`` media type, lower case, without parameters (``""`` when absent): from
    ``headers``, else the first of ``multiValueHeaders`` (header names compared case-insensitively)."""
    for key in ("headers", "multiValueHeaders"):
        headers = event.get(key)
        if not isinstance(headers, Mapping):
            continue
        value = next((v for name, v in headers.items() if name.lower() == CONTENT_TYPE), None)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, str):
            return value.partition(";")[0].strip().lower()
    return ""


def _may_be_deep(text: str) -> bool:
    """Cheap pre-check (C speed): fewer brackets than the limit cannot nest deeper than it."""
    return text.count("[") + text.count("{") > MAX_JSON_DEPTH


def _depth(text: str) -> int:
    """Deepest nesting of arrays and objects outside strings (for bodies with many brackets only)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_JSON_DEPTH:
                return deepest
        elif char in "]}":
            depth -= 1
    return deepest
