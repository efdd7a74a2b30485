"""Pydantic validation errors as one readable sentence, without echoing the input back."""

from __future__ import annotations

from pydantic import ValidationError

__all__ = ["describe_validation_error"]

_MAX_ERRORS = 5


def describe_validation_error(err: ValidationError) -> str:
    """`messages.0.role: Input should be 'system', 'user', ...; model: Field required`."""
    problems = []
    for problem in err.errors(include_input=False, include_url=False)[:_MAX_ERRORS]:
        location = ".".join(str(part) for part in problem["loc"]) or "input"
        problems.append(f"{location}: {problem['msg']}")
    more = len(err.errors()) - _MAX_ERRORS
    if more > 0:
        problems.append(f"and {more} more")
    return "; ".join(problems)
