"""Execution profiles and typed notebook parameters.

Every notebook's first code cell is tagged ``parameters`` and holds the values of
the **cpu** profile (the one that builds the book). ``notebooks/profiles.yml``
gives, per notebook, the overrides of the **smoke** profile (tests and CI: at
most 90 s on 2 CPU cores) and of the **paper** profile (the thesis' exact
settings, for a GPU). Each notebook also has a ``profile`` parameter, which the
runner sets, so a notebook can say which profile produced its numbers.

The parameters cell is also the notebook's *schema* (:func:`notebook_schema`): each
parameter's type is that of its cpu value (``3`` an int, ``0.1`` a float that also
takes an int, ``"cpu"`` a string, ``True`` a bool, ``[1, 2]`` a list of ints, ``[]``
a list of anything). A parameter may be ``None`` when its value is ``None`` or its
comment mentions ``None`` (``train_size = 2500  # None for all images``); an
annotation (``train_size: int | None = 2500``) states the type outright. Every
value from ``profiles.yml``, a grid file or the command line is checked against it
before a kernel starts; a bad one raises ``ValueError`` naming the parameter, the
expected type and the value given.
"""

from __future__ import annotations

import ast
import datetime
import functools
import io
import math
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import yaml

from thesislib.paths import PROFILES, PROJECT_ROOT
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"
PROFILES_FILE = NOTEBOOKS_DIR / "profiles.yml"


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is one of :data:`PROFILES`, else raise ``ValueError``."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: {', '.join(PROFILES)}")
    return profile


# --- the schema: types from the parameters cell ----------------------------------------------------


@dataclass(frozen=True)
class ParamType:
    """The type of one parameter: ``kind`` is bool, int, float, str, list or any; lists have ``item``."""

    kind: str
    item: ParamType | None = None
    optional: bool = False

    def __str__(self) -> str:
        text = f"list[{self.item}]" if self.kind == "list" and self.item is not None else self.kind
        return f"{text} or None" if self.optional else text


@dataclass(frozen=True)
class Parameter:
    """One parameter of a notebook: its name, type, cpu-profile default (source text) and comment."""

    name: str
    type: ParamType
    default: str
    comment: str = ""


_ANY = ParamType("any")
_SCALARS = {"bool": bool, "int": int, "float": float, "str": str}


def _type_of(value: Any) -> ParamType:
    """The type a literal stands for; lists take the common type of their items."""
    if value is None:
        return ParamType("any", optional=True)
    if isinstance(value, bool):
        return ParamType("bool")
    if isinstance(value, int):
        return ParamType("int")
    if isinstance(value, float):
        return ParamType("float")
    if isinstance(value, str):
        return ParamType("str")
    if isinstance(value, list | tuple):
        item: ParamType | None = None
        for element in value:
            item = _type_of(element) if item is None else _join(item, _type_of(element))
        return ParamType("list", item or _ANY)
    return _ANY


def _join(a: ParamType, b: ParamType) -> ParamType:
    """The narrowest type holding both ``a`` and ``b`` (int and float join to float)."""
    optional = a.optional or b.optional
    if a.kind == "any" or b.kind == "any":
        return ParamType("any", optional=optional)
    if {a.kind, b.kind} == {"int", "float"}:
        return ParamType("float", optional=optional)
    if a.kind != b.kind:
        return ParamType("any", optional=optional)
    if a.kind == "list":
        return ParamType("list", _join(a.item or _ANY, b.item or _ANY), optional)
    return ParamType(a.kind, optional=optional)


def _annotation_type(node: ast.expr, where: str) -> ParamType:
    """``int``, ``float | None``, ``Optional[str]``, ``list[int]``, ``list`` ... as a :class:`ParamType`."""
    if isinstance(node, ast.Constant) and node.value is None:
        return ParamType("any", optional=True)
    if isinstance(node, ast.Name) and node.id in (*_SCALARS, "list", "Any"):
        return ParamType("any" if node.id == "Any" else node.id, _ANY if node.id == "list" else None)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _annotation_type(node.left, where), _annotation_type(node.right, where)
        none = [t for t in (left, right) if t.kind == "any" and t.optional]
        if none:
            other = right if none[0] is left else left
            return ParamType(other.kind, other.item, True)
        return _join(left, right)
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        if node.value.id in ("list", "List"):
            return ParamType("list", _annotation_type(node.slice, where))
        if node.value.id == "Optional":
            inner = _annotation_type(node.slice, where)
            return ParamType(inner.kind, inner.item, True)
    raise ValueError(
        f"{where}: annotation {ast.unparse(node)!r} is not a parameter type; use bool, int, float, str, "
        "list[...], Any, with '| None' for optional values"
    )


def _comments(source: str) -> dict[int, str]:
    comments: dict[int, str] = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                comments[token.start[0]] = token.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        pass
    return comments


def _parameters_cell(notebook: Path) -> str:
    contents = nbformat.read(notebook, as_version=4)
    for cell in contents.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            return cell.source
    raise ValueError(f"{notebook} has no code cell tagged 'parameters'")


@functools.cache
def _schema(notebook: Path, mtime_ns: int) -> dict[str, Parameter]:
    source = _parameters_cell(notebook)
    try:
        tree = ast.parse(source)
    except SyntaxError as error:
        raise ValueError(f"{notebook.name}: the parameters cell is not valid Python: {error}") from None
    comments = _comments(source)
    schema: dict[str, Parameter] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, annotation = statement.targets[0], None
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, annotation = statement.target, statement.annotation
        else:
            continue
        if not isinstance(target, ast.Name) or statement.value is None:
            continue
        where = f"{notebook.name}, parameter {target.id!r}"
        try:
            value = ast.literal_eval(statement.value)
        except ValueError:
            value = None  # an expression: its type cannot be read off; accept anything
            kind = _ANY
        else:
            kind = _type_of(value)
        if annotation is not None:
            kind = _annotation_type(annotation, where)
        comment = comments.get(statement.lineno, "")
        if annotation is None and re.search(r"\bNone\b", comment) and not kind.optional:
            kind = ParamType(kind.kind, kind.item, True)
        default = ast.get_source_segment(source, statement.value) or ast.unparse(statement.value)
        schema[target.id] = Parameter(target.id, kind, default, comment)
    if not schema:
        raise ValueError(f"{notebook} declares no parameters in its 'parameters' cell")
    return schema


def notebook_schema(notebook: str | Path) -> dict[str, Parameter]:
    """The typed parameters of ``notebook``: name -> :class:`Parameter`, from its ``parameters`` cell."""
    notebook = Path(notebook)
    if not notebook.is_file():
        raise FileNotFoundError(f"no notebook at {notebook}")
    return _schema(notebook.resolve(), notebook.stat().st_mtime_ns)


def notebook_parameters(notebook: str | Path) -> dict[str, Any]:
    """The parameters declared in ``notebook``'s ``parameters`` cell: name -> default (as source text)."""
    return {name: parameter.default for name, parameter in notebook_schema(notebook).items()}


_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"


def _conform(kind: ParamType, value: Any) -> tuple[bool, Any]:
    """(True, value as ``kind``) if ``value`` is of type ``kind``, else (False, None)."""
    if value is None:
        return kind.optional, None
    if kind.kind == "any":
        ok = _plain_data(value)
        return ok, value
    if kind.kind == "bool":
        return isinstance(value, bool), value
    if kind.kind == "int":
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind.kind == "float":
        if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):  # YAML 1.1 reads 1e-3 as text
            value = float(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(float(value)):
            return True, float(value)
        return False, None
    if kind.kind == "str":
        return isinstance(value, str), value
    if kind.kind == "list":
        if not isinstance(value, list | tuple):
            return False, None
        conformed = []
        for element in value:
            ok, element = _conform(kind.item or _ANY, element)
            if not ok:
                return False, None
            conformed.append(element)
        return True, conformed
    return False, None


def _plain_data(value: Any) -> bool:
    """True for the values papermill can inject: None, bool, int, float, str and lists/dicts of them."""
    if value is None or isinstance(value, bool | int | float | str):
        return not isinstance(value, float) or math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_plain_data(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_data(v) for k, v in value.items())
    return False


def check_parameter(notebook: str | Path, name: str, value: Any, source: str = "the command line") -> Any:
    """``value`` checked against parameter ``name`` of ``notebook`` (ints widened to float where declared).

    Raises ``ValueError`` naming the notebook, the parameter, the expected type and the value given.
    """
    schema = notebook_schema(notebook)
    if name not in schema:
        raise ValueError(
            f"unknown parameter {name} for {Path(notebook).name} (from {source}); "
            f"valid parameters: {', '.join(sorted(schema))}"
        )
    kind = schema[name].type
    ok, conformed = _conform(kind, value)
    if not ok:
        shown = value.isoformat() if isinstance(value, datetime.date) else value
        raise ValueError(
            f"parameter {name} of {Path(notebook).name} (from {source}) expects {kind}, "
            f"got {type(value).__name__} {shown!r}"
        )
    return conformed


def parse_parameter(notebook: str | Path, name: str, text: str) -> Any:
    """Read the command-line text of parameter ``name`` by its declared type, then check it.

    A ``str`` parameter takes the text as it is (``null`` is None where None is allowed); other
    types read it as YAML (``3``, ``0.1``, ``1e-3``, ``true``, ``[1, 2]``).
    """
    schema = notebook_schema(notebook)
    if name in schema and schema[name].type.kind == "str":
        value: Any = None if schema[name].type.optional and text in ("null", "None", "~") else text
    else:
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ValueError(f"parameter {name}: cannot read {text!r} as a value ({mark})") from None
    return check_parameter(notebook, name, value)


# --- profiles.yml ------------------------------------------------------------------------------------


@functools.cache
def _load_profiles_file(path: Path, mtime_ns: int) -> dict[str, dict[str, dict[str, Any]]]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML: {_yaml_problem(error)}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must map notebook names to profiles")
    for notebook, profiles in data.items():
        profiles = profiles or {}
        if not isinstance(profiles, dict):
            raise ValueError(f"{path}: notebook {notebook!r} must map profile names to parameters")
        unknown = set(profiles) - {"smoke", "paper"}
        if unknown:
            raise ValueError(
                f"{path}: notebook {notebook!r} sets profiles {sorted(unknown)}; only 'smoke' and 'paper' "
                "take overrides (the cpu profile is the notebook's parameters cell)"
            )
        for name, values in profiles.items():
            if values is not None and not isinstance(values, dict):
                raise ValueError(f"{path}: {notebook}.{name} must map parameter names to values")
        data[notebook] = {name: dict(values or {}) for name, values in profiles.items()}
    return data


def _yaml_problem(error: yaml.YAMLError) -> str:
    """One line from a YAML error: the problem and where (line, column)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else str(problem)


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

    Every name and value is checked against the notebook's schema (:func:`notebook_schema`): an
    unknown name raises ``ValueError`` listing the valid ones (a misspelt parameter would otherwise
    be silently ignored by papermill), a value of the wrong type names the expected type.
    """
    check_profile(profile)
    notebook = Path(notebook)
    valid = notebook_schema(notebook)
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
                f"unknown parameter(s) {', '.join(map(str, unknown))} for {notebook.name} (from {source}); "
                f"valid parameters: {', '.join(sorted(valid))}"
            )
        for name, value in values.items():
            parameters[name] = check_parameter(notebook, name, value, source)
    return parameters


def parse_value(text: str) -> Any:
    """Read one command-line parameter value as YAML (``3`` -> 3, ``[1, 2]`` -> list, ``cpu`` -> 'cpu').

    Untyped; :func:`parse_parameter` reads a value by its notebook's declared type.
    """
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
