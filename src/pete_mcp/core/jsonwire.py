"""The one strict JSON reader every face uses for request bodies.

Python's `json` module accepts what no other JSON parser sends: `NaN`, `Infinity`, `1e400`
(read as infinity), lone UTF-16 surrogates (`"\\ud800"`, which later fail to encode and turn
into a 500), and nesting deep enough to exhaust the stack. `loads_strict` refuses each with a
`JsonInputError` (HTTP 400) whose message names the problem and where it is
(`messages.0.content`), in the same dotted form pydantic uses for field errors. Numbers must
be finite and integers fit in 64 bits; depth is bounded (`MAX_DEPTH`).

A body is read by orjson first (every voice turn's request passes here, and at high
concurrency its parse is CPU other calls queue behind); orjson itself refuses `NaN`,
infinities, invalid UTF-8 and lone surrogates, and a cheap walk checks depth and integer
range. Anything it refuses is read again by the standard library parser, whose hooks
(`parse_constant`, `parse_float`, `parse_int`) let every refusal name its field, so the
messages are the same whichever parser saw the body first. `validation_message` renders a
pydantic `ValidationError` the same way, so every face's 400 reads alike.
"""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from .errors import BodyTooLarge, InputError, JsonInputError

__all__ = [
    "MAX_DEPTH",
    "MAX_INT",
    "BodyTooLarge",
    "JsonInputError",
    "loads_strict",
    "parse_model",
    "validation_message",
]

MAX_DEPTH = 64
MAX_INT = 2**63 - 1
_BIG_FLOAT = float(2**63)

ModelT = TypeVar("ModelT", bound=BaseModel)


class _Refused:
    """A value the parser met that JSON does not allow; the walk reports it with its path."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what


def _constant(name: str) -> _Refused:
    return _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused(f"{text[:40]} is too large for a finite number")


def _int(text: str) -> int | _Refused:
    if len(text) > 20:
        return _Refused(f"the integer {text[:20]}… is too large")
    value = int(text)
    return value if -MAX_INT - 1 <= value <= MAX_INT else _Refused(f"the integer {text} does not fit in 64 bits")


def _join(path: str, key: str | int) -> str:
    return f"{path}.{key}" if path else str(key)


def _where(path: str) -> str:
    shown = path if len(path) <= 120 else f"{path[:57]}…{path[-60:]}"
    return f" at {shown}" if path else ""


def _check_text(text: str, path: str, what: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise JsonInputError(f"{what}{_where(path)} holds a lone UTF-16 surrogate (not text).", path=path) from None


def _walk(value: Any, max_depth: int) -> None:
    """Refuse what the hooks marked, lone surrogates, and nesting past `max_depth`, naming the path."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, _Refused):
            raise JsonInputError(f"{item.what}{_where(path)}.", path=path)
        if isinstance(item, str):
            _check_text(item, path, "a string")
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise JsonInputError(f"the body is nested deeper than {max_depth} levels{_where(path)}.", path=path)
            if isinstance(item, dict):
                for key, child in item.items():
                    _check_text(key, path, "a key")
                    stack.append((child, _join(path, key), depth + 1))
            else:
                stack.extend((child, _join(path, i), depth + 1) for i, child in enumerate(item))


def _plain(value: Any) -> bool:
    """A scalar orjson read that the strict reader would read alike: an integer in 64 signed bits, and
    no float as large as 2**63 (orjson reads an integer literal past 64 bits as a float)."""
    if type(value) is int:
        return -MAX_INT - 1 <= value <= MAX_INT
    return type(value) is not float or -_BIG_FLOAT < value < _BIG_FLOAT


def _fits(value: Any, max_depth: int) -> bool:
    """What orjson accepted is what the strict reader accepts: nesting under `max_depth`, plain numbers."""
    if not isinstance(value, dict | list):
        return _plain(value)
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth >= max_depth:
            return False
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1))
            elif not _plain(child):
                return False
    return True


def loads_strict(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one JSON document strictly.

    Raises:
        JsonInputError: not UTF-8, not JSON, a non-finite or oversized number, a lone surrogate,
            or deeper than `max_depth`.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # the standard library's read below names what is wrong, and where
    else:
        if _fits(value, max_depth):
            return value
    if isinstance(raw, bytes | bytearray):
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonInputError(f"the request body is not UTF-8 (invalid byte at offset {exc.start}).") from None
    else:
        text = raw
    text = text.removeprefix("\ufeff")
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except json.JSONDecodeError as exc:
        raise JsonInputError(
            f"the request body is not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RecursionError:
        raise JsonInputError(f"the body is nested deeper than {max_depth} levels.") from None
    except ValueError as exc:  # e.g. a float literal float() refuses
        raise JsonInputError(f"the request body is not JSON: {exc}.") from None
    _walk(value, max_depth)
    return value


def validation_message(exc: ValidationError, *, prefix: str = "invalid request") -> str:
    """`invalid request: temperature: Input should be a valid number; ...` (at most five problems)."""
    problems = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors(include_input=False)]
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return f"{prefix}: {'; '.join(problems[:5])}{more}."


def parse_model(model: type[ModelT], raw: bytes | str, *, empty: Any = None) -> ModelT:
    """`loads_strict`, then `model.model_validate`; an empty body reads as `empty` when given.

    Raises:
        JsonInputError: the body is not strict JSON.
        InputError: the JSON does not fit `model` (the message names each field).
    """
    value = empty if not raw and empty is not None else loads_strict(raw)
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise InputError(validation_message(exc)) from None
