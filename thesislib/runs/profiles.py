"""Execution profiles and notebook parameters.

Every notebook's first code cell is tagged ``parameters`` and holds the values of
the **cpu** profile (the one that builds the book). ``notebooks/profiles.yml``
gives, per notebook, the overrides of the **smoke** profile (tests and CI: at
most 90 s on 2 CPU cores) and of the **paper** profile (the thesis' exact
settings, for a GPU). Each notebook also has a ``profile`` parameter, which the
runner sets, so a notebook can say which profile produced its numbers.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import papermill
import yaml

from thesislib.paths import PROJECT_ROOT

PROFILES = ("smoke", "cpu", "paper")
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
PROFILES_FILE = NOTEBOOKS_DIR / "profiles.yml"


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is one of :data:`PROFILES`, else raise ``ValueError``."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    return profile


def notebook_parameters(notebook: str | Path) -> dict[str, Any]:
    """The parameters declared in ``notebook``'s ``parameters`` cell: name -> default (as source text)."""
    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook at {notebook}")
    declared = papermill.inspect_notebook(str(notebook))
    if not declared:
        raise ValueError(f"{notebook} has no code cell tagged 'parameters'")
    return {name: info["default"] for name, info in declared.items()}


@functools.cache
def _load_profiles_file(path: Path, mtime_ns: int) -> dict[str, dict[str, dict[str, Any]]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path} must map notebook names to profiles")
    for notebook, profiles in data.items():
        profiles = profiles or {}
        unknown = set(profiles) - {"smoke", "paper"}
        if unknown:
            raise ValueError(
                f"{path}: notebook {notebook!r} sets profiles {sorted(unknown)}; only 'smoke' and 'paper' "
                "take overrides (the cpu profile is the notebook's parameters cell)"
            )
        data[notebook] = {name: dict(values or {}) for name, values in profiles.items()}
    return data


def load_profiles(path: str | Path = PROFILES_FILE) -> dict[str, dict[str, dict[str, Any]]]:
    """Read ``profiles.yml``: notebook stem -> profile -> parameter overrides."""
    path = Path(path)
    if not path.is_file():
        return {}
    return _load_profiles_file(path, path.stat().st_mtime_ns)


def resolve_parameters(
    notebook: str | Path,
    profile: str,
    overrides: dict[str, Any] | None = None,
    profiles_file: str | Path = PROFILES_FILE,
) -> dict[str, Any]:
    """The parameters to inject into ``notebook`` for ``profile``, then ``overrides`` on top.

    Every name is checked against the notebook's ``parameters`` cell; an unknown
    name raises ``ValueError`` listing the valid ones (a misspelt parameter would
    otherwise be silently ignored by papermill).
    """
    check_profile(profile)
    notebook = Path(notebook)
    valid = notebook_parameters(notebook)
    profile_values = load_profiles(profiles_file).get(notebook.stem, {}).get(profile, {})
    parameters: dict[str, Any] = {}
    if "profile" in valid:
        parameters["profile"] = profile
    for source, values in (
        (f"profile {profile!r} in {Path(profiles_file).name}", profile_values),
        ("the command line", overrides or {}),
    ):
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {', '.join(unknown)} for {notebook.name} (from {source}); "
                f"valid parameters: {', '.join(sorted(valid))}"
            )
        parameters.update(values)
    return parameters


def parse_value(text: str) -> Any:
    """Read one command-line parameter value as YAML (``3`` -> 3, ``[1, 2]`` -> list, ``cpu`` -> 'cpu')."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
