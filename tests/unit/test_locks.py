"""The lock files (``locks/``) are in step with the requirements they were resolved from, and are installed
with their hashes: a pin changed without ``make lock`` fails here, not in next month's fresh clone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra import layers
from infra.config import ARCHITECTURES, PYTHON_RUNTIMES

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ROOT / "locks"
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)==([^\s;#\\]+)")


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """The ``name==version`` lines of a requirements file, following its ``-r`` includes."""
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("-r "):
            found.update(pins(path.parent / line.split(maxsplit=1)[1]))
        elif match := REQUIREMENT.match(line):
            found[normalized(match.group(1))] = match.group(2)
    return found


def entries(lock: Path) -> list[tuple[str, list[str]]]:
    """Each requirement of a lock file with the hashes that follow it."""
    result: list[tuple[str, list[str]]] = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if line[0].isspace():
            assert result, f"{lock.name}: a hash before any requirement"
            result[-1][1].extend(re.findall(r"--hash=sha256:([0-9a-f]{64})", stripped))
        else:
            result.append((stripped, []))
    return result


def make_variable(name: str) -> str:
    match = re.search(rf"^{name} := (\S+)$", MAKEFILE, re.MULTILINE)
    assert match, name
    return match.group(1)


def test_the_venv_lock_pins_every_requirement_at_its_version() -> None:
    locked = layers.locked_versions((LOCKS / "dev.txt").read_text(encoding="utf-8"))
    wanted = pins(ROOT / "requirements-dev.txt")
    assert {"boto3", "rich", "pytest", "aws-cdk-lib"} <= wanted.keys()
    stale = {name: (version, locked.get(name)) for name, version in wanted.items() if locked.get(name) != version}
    assert stale == {}, "requirements*.txt changed without `make lock`: {name: (wanted, locked)}"


@pytest.mark.parametrize("lock", sorted(LOCKS.glob("*.txt")), ids=lambda path: path.name)
def test_every_locked_package_is_an_exact_version_with_hashes(lock: Path) -> None:
    found = entries(lock)
    assert found
    for requirement, hashes in found:
        assert REQUIREMENT.match(requirement), f"{lock.name}: {requirement} is not name==version"
        assert hashes, f"{lock.name}: {requirement} has no --hash"


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("runtime", PYTHON_RUNTIMES)
@pytest.mark.parametrize("layer", layers.LAYERS)
def test_each_layer_is_locked_for_every_runtime_and_architecture(layer: str, runtime: str, architecture: str) -> None:
    lock = layers.lock_file(layer, runtime, architecture)
    layers.check_lock(lock, layers.layer_requirements(layer))  # raises when missing or stale


def test_the_sdk_layer_locks_the_sdk_the_venv_runs() -> None:
    venv = layers.locked_versions((LOCKS / "dev.txt").read_text(encoding="utf-8"))
    for runtime in PYTHON_RUNTIMES:
        for architecture in ARCHITECTURES:
            lock = layers.locked_versions(layers.lock_file("sdk", runtime, architecture).read_text(encoding="utf-8"))
            assert {lock["boto3"], lock["botocore"]} == {venv["boto3"], venv["botocore"]}


def test_a_stale_layer_lock_is_refused_before_anything_is_installed(tmp_path: Path) -> None:
    lock = tmp_path / "layer.txt"
    lock.write_text("boto3==1.0.0 \\\n    --hash=sha256:" + "0" * 64 + "\n", encoding="utf-8")
    with pytest.raises(layers.LayerBuildError, match=r"locks boto3==1\.0\.0, not boto3==1\.44\.5: run `make lock`"):
        layers.check_lock(lock, ("boto3==1.44.5",))
    with pytest.raises(layers.LayerBuildError, match="locks no botocore"):
        layers.check_lock(lock, ("boto3==1.0.0", "botocore>=1"))
    with pytest.raises(layers.LayerBuildError, match="missing: run `make lock`"):
        layers.check_lock(tmp_path / "absent.txt", ("boto3==1.0.0",))


def test_the_installers_are_locked_too() -> None:
    assert layers.locked_versions((LOCKS / "pip.txt").read_text(encoding="utf-8")) == {
        "pip": make_variable("PIP_VERSION")
    }
    assert layers.locked_versions((LOCKS / "uv.txt").read_text(encoding="utf-8")) == {"uv": make_variable("UV_VERSION")}


def test_make_install_and_the_layers_install_only_from_the_locks_with_hashes() -> None:
    install = MAKEFILE[MAKEFILE.index("$(STAMP):") : MAKEFILE.index("node_modules/.package-lock.json:")]
    assert "-r requirements" not in install
    assert install.count("--require-hashes") == 2
    assert "uv" not in install.lower(), "the lock tool is only for make lock"
    source = Path(layers.__file__).read_text(encoding="utf-8")
    assert '"--require-hashes"' in source and '"--requirement", str(lock)' in source
