"""``route``: ask the deployed router for a query's channel weights and draw them.

The request is ``POST <RouteUrl>`` with ``{"query", "include_reasoning"}``: signed with SigV4 for service
``execute-api`` (botocore's ``SigV4Auth``; the stack's default ``api_auth=iam``) or sent with an ``x-api-key``
header (``api_auth=api_key``: ``--api-key``, else the key named by the stack's ``RouteApiKeyId`` output is
read with ``apigateway:GET``). Plain ``urllib``: no extra dependency.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import NoCredentialsError
from rich.console import Group
from rich.padding import Padding
from rich.table import Table

from cli.app import App
from cli.errors import AuthError, CliError, UsageError
from cli.text import FractionBar

SERVICE = "execute-api"
TIMEOUT_S = 30.0
BAR_WIDTH = 30
_REGION_IN_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")


@dataclass(frozen=True)
class RouteResult:
    status: int
    body: dict[str, Any]
    round_trip_ms: float
    url: str
    auth: str  # "sigv4" | "api_key"

    @property
    def weights(self) -> dict[str, float]:
        return dict(self.body.get("weights") or {})


def region_of(url: str, default: str) -> str:
    """The Region in an ``execute-api`` host name, else ``default`` (e.g. a custom domain)."""
    match = _REGION_IN_HOST.search(urlparse(url).hostname or "")
    return match.group(1) if match else default


def sigv4_headers(app: App, url: str, body: bytes, region: str) -> dict[str, str]:
    credentials = app.session.get_credentials()
    if credentials is None:
        raise NoCredentialsError()
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(credentials.get_frozen_credentials(), SERVICE, region).add_auth(request)
    return dict(request.headers.items())


def api_key_value(app: App, explicit: str | None) -> str | None:
    """``--api-key``, else the stack's API key (``RouteApiKeyId`` output) when the API uses api_key auth."""
    if explicit:
        return explicit
    key_id = app.outputs.api_key_id
    if not key_id:
        return None
    return str(app.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"])


def route_query(
    app: App, query: str, *, include_reasoning: bool = True, url: str | None = None, api_key: str | None = None
) -> RouteResult:
    """POST the query; a non-2xx answer is a :class:`CliError` carrying the API's message."""
    if not query.strip():
        raise UsageError("the query is empty")
    target = url or app.outputs.route_url
    if urlparse(target).scheme not in ("https", "http"):
        raise UsageError(f"--url {target!r} is not an http(s) URL")
    body = json.dumps({"query": query, "include_reasoning": include_reasoning}).encode()
    key = api_key if url else api_key_value(app, api_key)
    if key:
        headers = {"Content-Type": "application/json", "x-api-key": key}
        auth = "api_key"
    else:
        headers = sigv4_headers(app, target, body, region_of(target, app.region))
        auth = "sigv4"
    request = urllib.request.Request(target, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - checked above
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except urllib.error.URLError as exc:
        raise CliError(f"cannot reach {target}: {exc.reason}") from None
    round_trip_ms = (time.perf_counter() - started) * 1000.0
    try:
        parsed = json.loads(raw or b"{}")
    except json.JSONDecodeError:
        parsed = {"message": raw.decode("utf-8", "replace")[:500]}
    if not isinstance(parsed, dict):
        parsed = {"message": str(parsed)[:500]}
    if status >= 300:
        message = f"POST {target} answered {status}: {parsed.get('message') or parsed.get('Message') or parsed}"
        if status in (401, 403):
            hint = (
                "your credentials need execute-api:Invoke on the API"
                if auth == "sigv4"
                else "the API key is wrong, disabled, or not in the API's usage plan"
            )
            raise AuthError(message, hint=hint)
        if status == 400:
            raise UsageError(message)
        raise CliError(message)
    return RouteResult(status=status, body=parsed, round_trip_ms=round_trip_ms, url=target, auth=auth)


def render(query: str, result: RouteResult) -> Group:
    """The query, a bar chart of its channel weights (rich bars), then model, source, latency and reasoning."""
    chart = Table.grid(padding=(0, 2))
    chart.add_column()
    chart.add_column()
    chart.add_column(justify="right")
    for name, value in result.weights.items():
        chart.add_row(name, FractionBar(float(value), BAR_WIDTH), f"{float(value):.2f}")
    body = result.body
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("model", str(body.get("model")))
    facts.add_row("source", str(body.get("source")))
    latency = body.get("latency_ms")
    router = f"{float(latency):.0f} ms in the router, " if isinstance(latency, int | float) else ""
    facts.add_row("latency", f"{router}{result.round_trip_ms:.0f} ms round trip ({result.auth})")
    if body.get("reasoning"):
        facts.add_row("reason", str(body["reasoning"]))
    indent = (0, 0, 0, 2)
    return Group(f"Query: {query}", "", Padding(chart, indent, expand=False), "", Padding(facts, indent, expand=False))


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "route",
        parents=[common],
        help="route a query with the deployed API and draw its channel weights",
        description="POST /route on the stack's routing API (SigV4-signed, or with an API key).",
    )
    parser.add_argument("query", help="the search query, e.g. 'sunset over mountains'")
    parser.add_argument(
        "--no-reasoning", action="store_true", help="ask for weights only (the router may stop at the weights)"
    )
    parser.add_argument("--url", help="the route URL (default: the stack's RouteUrl output)")
    parser.add_argument("--api-key", help="send this API key instead of signing (api_auth=api_key stacks)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer as is")
    parser.set_defaults(handler=run)


def run(app: App, args: argparse.Namespace) -> int:
    result = route_query(app, args.query, include_reasoning=not args.no_reasoning, url=args.url, api_key=args.api_key)
    if args.json:
        app.terminal.print(json.dumps(result.body, indent=2, ensure_ascii=False))
    else:
        app.terminal.show(render(args.query, result))
    return 0
