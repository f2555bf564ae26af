"""Lambda layers built without Docker: ``pip install --platform ... --only-binary=:all:`` for the Lambda
platform (manylinux wheels for the configured architecture and Python version).

The charts layer carries matplotlib for the report function. It is built once into ``build/layers/`` (a
stamp file records what was installed) by ``make layers``, or by the first synth that needs it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from infra import LAMBDAS_DIR

BUILD_DIR = LAMBDAS_DIR.parent / "build" / "layers"
# python-dateutil stays below 3 so the layer cannot shadow the runtime botocore's requirement.
CHARTS_REQUIREMENTS = ("matplotlib==3.11.2", "python-dateutil>=2.8,<3")
_PLATFORMS = {
    "arm64": ("manylinux2014_aarch64", "manylinux_2_28_aarch64"),
    "x86_64": ("manylinux2014_x86_64", "manylinux_2_28_x86_64"),
}
# Not needed at run time; removing them keeps the layer well inside Lambda's 250 MB unzipped limit.
_PRUNE = ("**/tests", "**/__pycache__", "matplotlib/mpl-data/sample_data", "**/*.pyi")


class LayerBuildError(RuntimeError):
    pass


def charts_layer_dir(python_runtime: str, architecture: str) -> Path:
    """The built layer folder (``python/`` inside), building it first when missing or outdated."""
    target = BUILD_DIR / f"charts-{python_runtime}-{architecture}"
    stamp = target / ".requirements"
    wanted = "\n".join(CHARTS_REQUIREMENTS)
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
        *CHARTS_REQUIREMENTS,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - fixed argv
    if result.returncode != 0:
        raise LayerBuildError(
            f"could not build the charts layer with pip (needs access to PyPI): {result.stderr.strip()[-2000:]}"
        )
    for pattern in _PRUNE:
        for path in sorted((target / "python").glob(pattern), reverse=True):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    stamp.write_text(wanted)
    return target


def main() -> None:
    """``python -m infra.layers [python3.13] [arm64]``: build the layer ahead of synth (``make layers``)."""
    runtime = sys.argv[1] if len(sys.argv) > 1 else "python3.13"
    architecture = sys.argv[2] if len(sys.argv) > 2 else "arm64"
    path = charts_layer_dir(runtime, architecture)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    print(f"charts layer: {path} ({size / 1e6:.0f} MB unzipped)")


if __name__ == "__main__":
    main()
