"""Lambda layers built without Docker: ``pip install --platform ... --only-binary=:all:`` for the Lambda
platform (manylinux wheels for the configured architecture and Python version).

- The **SDK layer** carries the exact boto3 and botocore this project pins (``requirements.txt``) and tests
  against. The Lambda runtime's own boto3 version is not published and the Powertools layer ships none, so
  without it the Bedrock APIs the tests validate might not exist at run time. Layers come before the runtime's
  ``/var/runtime`` on ``sys.path``, so the pinned SDK wins.
- The **charts layer** carries matplotlib for the report function.

Each layer installs its **lock file**, ``locks/layer-<name>-<runtime>-<architecture>.txt``: every package of the
layer, transitive ones included, at one version with the sha256 of its files, resolved for that Lambda platform
(``make lock``, with uv, from :func:`layer_requirements`). pip installs it with ``--require-hashes``, so a build
next month gets the same wheels, byte for byte, or fails. Each is built once into ``build/layers/`` (a stamp file
records the lock it was built from) by ``make layers``, or by the first synth that needs it.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

from infra import LAMBDAS_DIR

PROJECT_ROOT = LAMBDAS_DIR.parent
BUILD_DIR = PROJECT_ROOT / "build" / "layers"
REQUIREMENTS_FILE = PROJECT_ROOT / "requirements.txt"
LOCKS_DIR = PROJECT_ROOT / "locks"
# python-dateutil stays below 3 so the layer cannot shadow the runtime botocore's requirement.
CHARTS_REQUIREMENTS = ("matplotlib==3.11.2", "python-dateutil>=2.8,<3")
SDK_PACKAGES = ("boto3", "botocore")
LAYERS = ("sdk", "charts")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)\s*(?:==\s*([^\s;,\\]+))?")
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


def layer_requirements(name: str) -> tuple[str, ...]:
    """What the layer asks for, before its lock resolves the rest (the input of ``make lock``)."""
    if name == "sdk":
        return sdk_requirements()
    if name == "charts":
        return CHARTS_REQUIREMENTS
    raise LayerBuildError(f"no layer {name!r} (layers: {', '.join(LAYERS)})")


def lock_file(name: str, python_runtime: str, architecture: str) -> Path:
    return LOCKS_DIR / f"layer-{name}-{python_runtime}-{architecture}.txt"


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_versions(lock_text: str) -> dict[str, str]:
    """``name -> version`` of a lock file's ``name==version`` lines (names normalized)."""
    pins = {}
    for line in lock_text.splitlines():
        match = _PIN.match(line)
        if match and match.group(2):
            pins[_normalized(match.group(1))] = match.group(2)
    return pins


def check_lock(lock: Path, requirements: tuple[str, ...]) -> str:
    """The lock's text, once it is known to lock every requirement: an ``==`` pin at its very version.

    A pin changed in ``requirements.txt`` without ``make lock`` is refused here, before anything is installed.
    """
    if not lock.is_file():
        raise LayerBuildError(f"{lock} is missing: run `make lock` (it locks every layer for each runtime)")
    text = lock.read_text(encoding="utf-8")
    pins = locked_versions(text)
    for requirement in requirements:
        match = _PIN.match(requirement)
        if match is None:  # pragma: no cover - the requirements are this module's and requirements.txt's
            raise LayerBuildError(f"cannot read the requirement {requirement!r}")
        name, version = _normalized(match.group(1)), match.group(2)
        if name not in pins or (version is not None and pins[name] != version):
            found = f"{name}=={pins[name]}" if name in pins else f"no {name}"
            raise LayerBuildError(f"{lock} locks {found}, not {requirement}: run `make lock`")
    return text


def charts_layer_dir(python_runtime: str, architecture: str) -> Path:
    """The built charts layer folder (``python/`` inside), building it first when missing or outdated."""
    return _layer_dir("charts", python_runtime, architecture)


def sdk_layer_dir(python_runtime: str, architecture: str) -> Path:
    """The built SDK layer folder (pinned boto3 + botocore), building it first when missing or outdated."""
    return _layer_dir("sdk", python_runtime, architecture)


def _layer_dir(name: str, python_runtime: str, architecture: str) -> Path:
    target = BUILD_DIR / f"{name}-{python_runtime}-{architecture}"
    stamp = target / ".requirements"
    lock = lock_file(name, python_runtime, architecture)
    locked = check_lock(lock, layer_requirements(name))
    wanted = f"{lock.name} sha256:{hashlib.sha256(locked.encode()).hexdigest()}"
    if stamp.is_file() and stamp.read_text() == wanted:
        return target
    if target.exists():
        shutil.rmtree(target)
    python_version = python_runtime.removeprefix("python")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--require-hashes"]
    for platform in _PLATFORMS[architecture]:
        command += ["--platform", platform]
    command += [
        "--implementation", "cp",
        "--python-version", python_version,
        "--only-binary=:all:",
        "--target", str(target / "python"),
        "--requirement", str(lock),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        raise LayerBuildError(
            f"could not build the {name} layer from {lock.name} with pip (needs access to PyPI): "
            f"{result.stderr.strip()[-2000:]}"
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
    """``python -m infra.layers [python3.13] [arm64]``: build the layers ahead of synth (``make layers``).

    ``python -m infra.layers requirements NAME`` prints what layer NAME asks for (``make lock`` resolves it).
    """
    if sys.argv[1:2] == ["requirements"]:
        print("\n".join(layer_requirements(sys.argv[2] if len(sys.argv) > 2 else "")))
        return
    runtime = sys.argv[1] if len(sys.argv) > 1 else "python3.13"
    architecture = sys.argv[2] if len(sys.argv) > 2 else "arm64"
    for name, build in (("sdk", sdk_layer_dir), ("charts", charts_layer_dir)):
        path = build(runtime, architecture)
        print(f"{name} layer: {path} ({folder_bytes(path) / 1e6:.0f} MB unzipped)")


if __name__ == "__main__":
    main()
