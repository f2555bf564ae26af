"""Lambda layers built without Docker: ``pip install --platform ... --only-binary=:all:`` for the Lambda
platform (manylinux wheels for the configured architecture and Python version).

- The **SDK layer** carries the exact boto3 and botocore this project pins (``requirements.txt``) and tests
  against. The Lambda runtime's own boto3 version is not published and the Powertools layer ships none, so
  without it the Bedrock APIs the tests validate might not exist at run time. Layers come before the runtime's
  ``/var/runtime`` on ``sys.path``, so the pinned SDK wins.
- The **charts layer** carries matplotlib for the report function.

Each is built once into ``build/layers/`` (a stamp file records what was installed) by ``make layers``, or by
the first synth that needs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from infra import LAMBDAS_DIR

PROJECT_ROOT = LAMBDAS_DIR.parent
BUILD_DIR = PROJECT_ROOT / "build" / "layers"
REQUIREMENTS_FILE = PROJECT_ROOT / "requirements.txt"
# python-dateutil stays below 3 so the layer cannot shadow the runtime botocore's requirement.
CHARTS_REQUIREMENTS = ("matplotlib==3.11.2", "python-dateutil>=2.8,<3")
SDK_PACKAGES = ("boto3", "botocore")
_PLATFORMS = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
}
# Not needed at run time; removing them keeps the layer well inside Lambda's 250 MB unzipped limit.
_PRUNE = ("**/tests", "**/__pycache__", "matplotlib/mpl-data/sample_data", "**/*.pyi", "bin")


class LayerBuildError(RuntimeError):
    pass


def sdk_requirements(path: Path = REQUIREMENTS_FILE) -> tuple[str, ...]:
    """The ``boto3==`` / ``botocore==`` pins of ``requirements.txt``: the SDK the tests run with."""
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s#;]+)", line)
        if match and match.group(1).lower() in SDK_PACKAGES:
            pins[match.group(1).lower()] = f"{match.group(1).lower()}=={match.group(2)}"
    missing = [name for name in SDK_PACKAGES if name not in pins]
    if missing:
        raise LayerBuildError(f"{path} must pin {', '.join(missing)} with '==' (the SDK layer ships exactly that)")
    return tuple(pins[name] for name in SDK_PACKAGES)


def charts_layer_dir(python_runtime: str, architecture: str) -> Path:
    """The built charts layer folder (``python/`` inside), building it first when missing or outdated."""
    return _layer_dir("charts", CHARTS_REQUIREMENTS, python_runtime, architecture)


def sdk_layer_dir(python_runtime: str, architecture: str) -> Path:
    """The built SDK layer folder (pinned boto3 + botocore), building it first when missing or outdated."""
    return _layer_dir("sdk", sdk_requirements(), python_runtime, architecture)


def _layer_dir(name: str, requirements: tuple[str, ...], python_runtime: str, architecture: str) -> Path:
    target = BUILD_DIR / f"{name}-{python_runtime}-{architecture}"
    stamp = target / ".requirements"
    wanted = "\n".join(requirements)
    if stamp.is_file() and stamp.read_text() == wanted:
        return target
    if target.exists():
        shutil.rmtree(target)
    python_version = python_runtime.removeprefix("python")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for platform in _PLATFORMS[architecture]:
        command += ["--platform", platform]
    command += [
        "--implementation", "cp",
        "--python-version", python_version,
        "--only-binary=:all:",
        "--target", str(target / "python"),
        *requirements,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        raise LayerBuildError(
            f"could not build the {name} layer with pip (needs access to PyPI): {result.stderr.strip()[-2000:]}"
        )
    for pattern in _PRUNE:
        for path in sorted((target / "python").glob(pattern), reverse=True):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    stamp.write_text(wanted)
    return target


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> None:
    """``python -m infra.layers [python3.13] [arm64]``: build the layers ahead of synth (``make layers``)."""
    runtime = sys.argv[1] if len(sys.argv) > 1 else "python3.13"
    architecture = sys.argv[2] if len(sys.argv) > 2 else "arm64"
    for name, build in (("sdk", sdk_layer_dir), ("charts", charts_layer_dir)):
        path = build(runtime, architecture)
        print(f"{name} layer: {path} ({folder_bytes(path) / 1e6:.0f} MB unzipped)")


if __name__ == "__main__":
    main()
