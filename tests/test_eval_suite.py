"""The tenant-call suite format: the shipped suites load, and a broken file names the file and the field."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from pete_mcp.evals import CHECK_PARAMS, SuiteError, load_suite

SUITES = Path(__file__).resolve().parents[1] / "evals" / "tenant_calls"


def test_the_main_suite_has_sixty_cases_covering_every_kind_of_call() -> None:
    suite = load_suite(SUITES)
    assert suite.suite == "tenant_calls" and suite.version >= 1
    assert len(suite.cases) >= 60
    kinds = Counter(case.category for case in suite.cases)
    assert set(kinds) == {"maintenance", "lease_rent", "emergency", "difficult", "refuse_or_office", "privacy"}
    used = {check.name for case in suite.cases for check in case.checks}
    assert used == set(CHECK_PARAMS), "every check is exercised by at least one case"
    callers = {t.phone for t in suite.tenants}
    assert sum(case.caller in callers for case in suite.cases) > 50, "callers come from the suite's directory"


def test_the_heldout_suite_is_separate_and_shares_no_case_with_the_main_suite() -> None:
    main, heldout = load_suite(SUITES), load_suite(SUITES / "heldout")
    assert heldout.suite != main.suite and len(heldout.cases) >= 10
    assert not {c.id for c in main.cases} & {c.id for c in heldout.cases}
    assert not {t for c in main.cases for t in c.turns} & {t for c in heldout.cases for t in c.turns}


def _suite_dir(tmp_path: Path, cases: str) -> Path:
    (tmp_path / "suite.yaml").write_text("suite: t\nversion: 1\ntenants: []\n")
    (tmp_path / "calls.yaml").write_text(cases)
    return tmp_path


def test_an_unknown_check_names_the_file_the_case_and_the_check(tmp_path: Path) -> None:
    path = _suite_dir(
        tmp_path,
        "cases:\n  - id: ok-case\n    category: maintenance\n    caller: '+15551234567'\n"
        "    turns: [hi]\n    checks: [no_markdown, opens_ticket]\n",
    )
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    message = str(err.value)
    assert str(path / "calls.yaml") in message
    assert "cases[0] (id ok-case).checks[1]" in message and "unknown check 'opens_ticket'" in message


def test_a_bad_check_parameter_names_the_field(tmp_path: Path) -> None:
    path = _suite_dir(
        tmp_path,
        "cases:\n  - id: c1\n    category: maintenance\n    caller: '+15551234567'\n"
        "    turns: [hi]\n    checks: [{ticket: {unit: 4B, category: plumbin}}]\n",
    )
    with pytest.raises(SuiteError, match=r"calls\.yaml: cases\[0\] \(id c1\)\.checks\[0\].*plumbing"):
        load_suite(path)


def test_a_missing_field_and_a_bad_header_are_named(tmp_path: Path) -> None:
    path = _suite_dir(
        tmp_path, "cases:\n  - id: c1\n    category: maintenance\n    turns: [hi]\n    checks: [answered]\n"
    )
    with pytest.raises(SuiteError, match=r"calls\.yaml: cases\[0\] \(id c1\)\.caller: Field required"):
        load_suite(path)
    (tmp_path / "suite.yaml").write_text("suite: t\nversion: zero\n")
    with pytest.raises(SuiteError, match=r"suite\.yaml: version: "):
        load_suite(path)


def test_a_bad_regular_expression_and_a_repeated_id_are_refused(tmp_path: Path) -> None:
    case = "  - id: c1\n    category: privacy\n    caller: '+15551234567'\n    turns: [hi]\n"
    path = _suite_dir(tmp_path, "cases:\n" + case + "    checks: [{must_not_say: {patterns: ['(']}}]\n")
    with pytest.raises(SuiteError, match=r"checks\[0\].*not a valid regular expression"):
        load_suite(path)
    (tmp_path / "calls.yaml").write_text("cases:\n" + case + "    checks: [answered]\n")
    (tmp_path / "more.yaml").write_text("cases:\n" + case + "    checks: [answered]\n")
    with pytest.raises(SuiteError, match=r"more\.yaml: case id 'c1' is already used in .*calls\.yaml"):
        load_suite(path)


def test_unknown_case_ids_are_refused_by_name() -> None:
    suite = load_suite(SUITES)
    assert [c.id for c in suite.select(limit=3)] == [c.id for c in suite.cases[:3]]
    with pytest.raises(SuiteError, match="no-such-case"):
        suite.select(ids=["no-such-case"])
