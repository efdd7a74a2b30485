"""The tenant-call suite format: a versioned header, a tenant directory, cases with checks.

A suite is a directory (`suite.yaml` with the header, every other `*.yaml` holding `cases:`)
or one YAML file with both. Each case is a phone call: who calls (a number, usually a row of
the suite's tenant directory), what they say turn by turn, and the checks Jamie's behaviour
must pass (docs/evals.md lists them). Pydantic validates it all; an error names the file, the
case and the field, so a typo in a 60-case suite is one line to fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pete_mcp.core import InputError
from pete_mcp.core.property_desk import CATEGORIES

__all__ = [
    "CHECK_PARAMS",
    "CallCategory",
    "Case",
    "CheckSpec",
    "Suite",
    "SuiteError",
    "SuiteTenant",
    "load_suite",
]

CallCategory = Literal["maintenance", "lease_rent", "emergency", "difficult", "refuse_or_office", "privacy"]


class SuiteError(InputError):
    """A suite file is missing or does not match the format; the message names file and field."""

    code = "bad_eval_suite"


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(_Params):
    pass


class TicketParams(_Params):
    unit: str | None = None
    category: Literal[CATEGORIES] | None = None  # pyright: ignore[reportInvalidTypeForm]


class TransferParams(_Params):
    to: Literal["on_call", "office", "any"] = "any"


class PatternParams(_Params):
    patterns: list[str] = Field(min_length=1)
    why: str = ""

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
        return patterns


class SpeechParams(_Params):
    max_words: int = Field(default=60, ge=1, le=400)


# check name → its parameters; docs/evals.md describes each.
CHECK_PARAMS: dict[str, type[_Params]] = {
    "answered": NoParams,
    "emergency_paged": NoParams,
    "fits_speech": SpeechParams,
    "must_not_say": PatternParams,
    "must_say": PatternParams,
    "no_markdown": NoParams,
    "no_other_tenant": NoParams,
    "no_ticket": NoParams,
    "no_transfer": NoParams,
    "office_handoff": NoParams,
    "ticket": TicketParams,
    "transfer": TransferParams,
}


class CheckSpec(BaseModel):
    """One check of a case: its name and validated parameters."""

    model_config = ConfigDict(frozen=True)

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_yaml(cls, value: Any) -> Any:
        """`no_markdown` or `{ticket: {unit: 4B}}` → name + params."""
        if isinstance(value, str):
            value = {"name": value, "params": {}}
        elif isinstance(value, dict) and "name" not in value:
            if len(value) != 1:
                raise ValueError("a check is a name, or a mapping of one name to its parameters")
            ((name, params),) = value.items()
            value = {"name": name, "params": params or {}}
        if not isinstance(value, dict):
            raise ValueError("a check is a name, or a mapping of one name to its parameters")
        name = value.get("name")
        if name not in CHECK_PARAMS:
            raise ValueError(f"unknown check {name!r}; known checks: {', '.join(sorted(CHECK_PARAMS))}")
        params = CHECK_PARAMS[name].model_validate(value.get("params") or {})
        return {"name": name, "params": params.model_dump(exclude_none=True)}


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,79}$")
    category: CallCategory
    caller: str = Field(pattern=r"^\+?[0-9][0-9 ()-]{6,19}$")
    turns: list[str] = Field(min_length=1, max_length=8)
    checks: list[CheckSpec] = Field(min_length=1)
    rubric: str | None = None


class SuiteTenant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    phone: str = Field(pattern=r"^\+?[0-9]{7,15}$")
    name: str = Field(min_length=1)
    unit: str = Field(min_length=1)
    property: str = Field(min_length=1)


class _Header(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suite: str = Field(pattern=r"^[a-z0-9_][a-z0-9_-]*$")
    version: int = Field(ge=1)
    description: str = ""
    tenants: list[SuiteTenant] = Field(default_factory=list)


class _CaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cases: list[Case]


class Suite(BaseModel):
    """A loaded suite: header fields plus every case, with the file each came from."""

    suite: str
    version: int
    description: str = ""
    tenants: list[SuiteTenant] = Field(default_factory=list)
    cases: list[Case] = Field(default_factory=list)
    source: str = ""
    files: dict[str, str] = Field(default_factory=dict)  # case id → file

    def select(self, *, ids: list[str] | None = None, limit: int | None = None) -> list[Case]:
        """The cases to run: the named ids (in suite order), else all, cut to `limit`.

        Raises:
            SuiteError: an id is not in the suite.
        """
        cases = self.cases
        if ids:
            known = {c.id for c in cases}
            missing = [i for i in ids if i not in known]
            if missing:
                raise SuiteError(f"suite {self.suite!r} has no case {', '.join(map(repr, missing))}.")
            cases = [c for c in cases if c.id in ids]
        return cases[:limit] if limit else cases


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the file: {exc.strerror}.") from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from None


def _where(data: Any, loc: tuple[int | str, ...]) -> str:
    """`cases[3] (id maint-leak).checks[1]` from a pydantic error location."""
    text, node = "", data
    for key in loc:
        if isinstance(key, int):
            text += f"[{key}]"
            node = node[key] if isinstance(node, list) and 0 <= key < len(node) else None
            if text.startswith("cases[") and text.count("[") == 1 and isinstance(node, dict) and "id" in node:
                text += f" (id {node['id']})"
        else:
            text += f".{key}" if text else str(key)
            node = node.get(key) if isinstance(node, dict) else None
    return text


def _validate(model: type[BaseModel], data: Any, path: Path) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _where(data, tuple(first["loc"])) or "(top level)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise SuiteError(f"{path}: {where}: {first['msg']}{more}.") from None


def load_suite(path: Path) -> Suite:
    """Load a suite directory (`suite.yaml` + case files) or a single suite file.

    Raises:
        SuiteError: a file is missing or unreadable, a field is wrong (named), or a case id repeats.
    """
    path = Path(path)
    if path.is_dir():
        header_path = path / "suite.yaml"
        if not header_path.is_file():
            raise SuiteError(f"{path}: a suite directory needs a suite.yaml header (suite, version, tenants).")
        header: _Header = _validate(_Header, _read_yaml(header_path), header_path)
        case_files = sorted(p for p in path.glob("*.yaml") if p.name != "suite.yaml")
        loaded = [(p, _validate(_CaseFile, _read_yaml(p), p).cases) for p in case_files]
    elif path.is_file():
        data = _read_yaml(path)
        if not isinstance(data, dict):
            raise SuiteError(f"{path}: (top level): expected a mapping with suite, version and cases.")
        header = _validate(_Header, {k: v for k, v in data.items() if k != "cases"}, path)
        loaded = [(path, _validate(_CaseFile, {"cases": data.get("cases")}, path).cases)]
    else:
        raise SuiteError(f"{path}: no such suite file or directory.")
    suite = Suite(**header.model_dump(), source=str(path))
    for file, cases in loaded:
        for case in cases:
            if case.id in suite.files:
                raise SuiteError(f"{file}: case id {case.id!r} is already used in {suite.files[case.id]}.")
            suite.files[case.id] = str(file)
            suite.cases.append(case)
    if not suite.cases:
        raise SuiteError(f"{path}: the suite has no cases.")
    return suite
