"""Missing dependencies skip on a laptop and fail in CI."""

from __future__ import annotations

import pytest

from tests.support.require import in_ci, require, require_module


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("", False), ("false", False)])
def test_ci_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_a_missing_dependency_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"missing in CI .*no Chromium"):
        require(False, "no Chromium")
    with pytest.raises(pytest.fail.Exception, match="missing in CI"):
        require_module("surely_not_installed_module_x", "not installed")


def test_a_missing_dependency_skips_with_its_reason_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium"):
        require(False, "no Chromium")
    require(True, "never shown")
    assert require_module("json", "stdlib").dumps([]) == "[]"
