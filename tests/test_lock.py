"""The locked environment: requirements.lock agrees with pyproject.toml, environment.yml and the Makefile.

A reproducible companion must rebuild the same environment years later: every dependency is
pinned to one version with the hashes of its files, and ``make`` installs from the lock.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("lock", ROOT / ".ci" / "lock.py")
lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock)


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = project["dependencies"] + [
        r for extra in lock.EXTRAS for r in project["optional-dependencies"][extra]
    ]
    return [Requirement(text) for text in texts]


def test_lock_was_resolved_from_the_current_pyproject() -> None:
    header = next(line for line in lock.LOCK.read_text().splitlines() if line.startswith(lock.HEADER))
    assert header.removeprefix(lock.HEADER) == lock.dependencies_digest(), (
        "pyproject.toml's dependencies changed since requirements.lock was made: run `make lock`"
    )


def test_every_pyproject_requirement_is_pinned_within_its_range() -> None:
    pins = lock.read_pins()
    for requirement in _requirements():
        name = lock.normalise(requirement.name)
        if name in lock.TORCH_PINS:
            version = lock.TORCH_PINS[name]
        else:
            assert name in pins, f"{name} is required by pyproject.toml but not in requirements.lock"
            version = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, outside pyproject.toml's {requirement}"
        )


def test_every_pin_is_exact_and_hashed() -> None:
    text = lock.LOCK.read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split(lock.HEADER, 1)[1].split("\n", 1)[1])
    assert len(blocks) == len(lock.read_pins()) > 100
    for block in blocks:
        assert re.match(r"^[A-Za-z0-9_.\-]+==\S+", block), block[:80]
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", block), f"no hash for {block.splitlines()[0]}"
    assert not any(lock.TORCH_STACK.match(name) for name in lock.read_pins()), "torch comes from TORCH_PINS"


def test_environment_yml_has_the_same_pins() -> None:
    listed = dict(
        re.findall(r"^\s+- ([A-Za-z0-9_.\-]+)==(\S+)$", (ROOT / "environment.yml").read_text(), re.M)
    )
    assert listed == lock.read_pins() | lock.TORCH_PINS, "run `python .ci/lock.py --env`"


def test_makefile_installs_the_lock_and_the_same_torch_pins() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes --no-deps -r $(LOCK)" in makefile and "LOCK := requirements.lock" in makefile
    x86 = re.search(r"^else\nTORCH_PINS \?= (.+)$", makefile, re.M).group(1)
    assert x86.split() == [f"{name}=={version}" for name, version in lock.TORCH_PINS.items()]


@pytest.mark.parametrize("name", sorted(lock.read_pins()))
def test_the_installed_environment_is_the_locked_one(name: str) -> None:
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        if name in ("setuptools", "wheel", "pip"):
            pytest.skip(f"{name} is part of the venv's tooling")
        raise
    assert installed == lock.read_pins()[name], (
        f"{name} {installed} installed, {lock.read_pins()[name]} locked"
    )
