"""The layering of the Lambda code (``lambdas/search_router``), read from every module's imports with ``ast``.

The rule:

1. Only modules under ``adapters/`` import ``boto3`` or ``botocore`` (any submodule, at module level or inside a
   function). Handlers reach AWS through the adapters: clients from ``adapters.clients``, client configurations and
   calls from the adapter modules, error types and codes from ``adapters.aws_errors``.
2. The domain packages (``shared``, ``contract``, ``pipeline``, ``router``) import neither ``adapters`` nor
   ``handlers``: they take and return plain data, and what they call (a model, a parameter) is passed in.
3. ``adapters`` import nothing of ``handlers`` but ``handlers.observability`` (the process's Powertools logger).

Handlers are the composition root: they may import everything.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "lambdas"
PACKAGE = "search_router"
AWS_SDK = ("boto3", "botocore")
DOMAIN = ("shared", "contract", "pipeline", "router")
LAYERS = (*DOMAIN, "adapters", "handlers")
ADAPTERS_MAY_USE = ("search_router.handlers.observability",)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    target: str  # the imported module (for ``from a import b``: ``a.b`` and ``a`` are both seen as ``a``)
    line: int

    @property
    def layer(self) -> str:
        parts = self.module.split(".")
        return parts[1] if len(parts) > 2 else ""  # search_router.<layer>.<module>

    def where_line(self) -> str:
        return f"{self.module}:{self.line}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module of a (possibly relative) ``from`` import."""
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([name] if name else [])])


def imports_of(source: str, module: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every import in ``source``, wherever it is (module level, a function, a ``try``), and every
    ``importlib.import_module("...")`` / ``__import__("...")`` of a literal name."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, is_package, node.level, node.module)
            yield Import(module, target, node.lineno)
            for alias in node.names:  # ``from search_router import adapters`` imports the package adapters
                yield Import(module, f"{target}.{alias.name}", node.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id)
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield Import(module, node.args[0].value, node.lineno)


def _all_imports() -> list[Import]:
    found: list[Import] = []
    for path in sorted((ROOT / PACKAGE).rglob("*.py")):
        found += imports_of(path.read_text(encoding="utf-8"), _module_name(path), is_package=path.name == "__init__.py")
    return found


IMPORTS = _all_imports()


def _is(target: str, *prefixes: str) -> bool:
    return any(target == prefix or target.startswith(f"{prefix}.") for prefix in prefixes)


def test_every_module_of_the_lambda_code_belongs_to_a_layer() -> None:
    modules = {_module_name(path) for path in (ROOT / PACKAGE).rglob("*.py")}
    unplaced = sorted(m for m in modules if m != PACKAGE and m.split(".")[1] not in LAYERS)
    assert unplaced == [], f"modules outside {LAYERS}: the layering test does not know their rule"


def test_only_the_adapters_import_boto3_or_botocore() -> None:
    offenders = {i.where_line() for i in IMPORTS if _is(i.target, *AWS_SDK) and i.layer != "adapters"}
    assert sorted(offenders) == []


def test_the_domain_imports_neither_adapters_nor_handlers() -> None:
    outer = (f"{PACKAGE}.adapters", f"{PACKAGE}.handlers")
    offenders = {i.where_line() for i in IMPORTS if i.layer in DOMAIN and _is(i.target, *outer)}
    assert sorted(offenders) == []


def test_the_adapters_use_nothing_of_the_handlers_but_their_logger() -> None:
    offenders = {
        i.where_line()
        for i in IMPORTS
        if i.layer == "adapters" and _is(i.target, f"{PACKAGE}.handlers") and not _is(i.target, *ADAPTERS_MAY_USE)
    }
    assert sorted(offenders) == []


def test_the_scan_sees_the_imports_it_is_about() -> None:
    # The adapters do import the SDK (else the first rule would hold vacuously) ...
    assert any(i.module == f"{PACKAGE}.adapters.clients" and i.target == "boto3" for i in IMPORTS)
    assert any(i.layer == "adapters" and _is(i.target, "botocore") for i in IMPORTS)
    # ... and the handlers import the domain and the adapters.
    assert any(i.layer == "handlers" and _is(i.target, f"{PACKAGE}.adapters") for i in IMPORTS)


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ("import boto3", "boto3"),
        ("import botocore.session as s", "botocore.session"),
        ("from botocore.exceptions import ClientError", "botocore.exceptions"),
        ("def f():\n    from botocore.config import Config\n    return Config", "botocore.config"),
        ("try:\n    import boto3\nexcept ImportError:\n    pass", "boto3"),
        ("import importlib\nimportlib.import_module('boto3')", "boto3"),
        ("from search_router import adapters", "search_router.adapters"),
        ("from ..adapters.clients import CLIENTS", "search_router.adapters.clients"),
        ("from . import labeling", "search_router.pipeline.labeling"),
    ],
)
def test_the_scan_finds_every_form_of_import(source: str, target: str) -> None:
    found = {i.target for i in imports_of(source, "search_router.pipeline.example")}
    assert target in found
