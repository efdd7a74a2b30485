"""The tenant directory: `pete tenants import` (CSV or JSON, bad rows by line), and who Jamie may look up."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pete_mcp.cli import main
from pete_mcp.core import Store
from pete_mcp.core.property_desk import PropertyDesk
from pete_mcp.core.tenant_directory import TenantRow, list_tenants, upsert_tenants
from pete_vapi.tools import JamieTools, ToolContext

GOOD_CSV = (
    "phone,name,unit,property,email\n+1 (555) 201-0001,Ana Diaz,3C,Elm Row,ana@example.com\n5552010002,Bo Lee,7,,\n"
)


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env={"DATA_DIR": str(tmp_path / "data")})
    return result.exit_code, result.stdout, result.stderr


def test_a_csv_directory_imports_and_lists(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(GOOD_CSV)
    code, out, _ = run(tmp_path, "tenants", "import", str(tmp_path / "t.csv"))
    assert code == 0 and "2 tenant(s) added, 0 updated" in out
    code, out, _ = run(tmp_path, "tenants", "list")
    assert code == 0
    assert "+15552010001\tAna Diaz\t3C\tElm Row\tana@example.com" in out and "+15552010002\tBo Lee\t7" in out


def test_a_second_import_updates_by_normalised_phone(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(GOOD_CSV)
    (tmp_path / "moved.json").write_text(json.dumps([{"phone": "555.201.0002", "name": "Bo Lee", "unit": "9A"}]))
    run(tmp_path, "tenants", "import", str(tmp_path / "t.csv"))
    code, out, _ = run(tmp_path, "tenants", "import", str(tmp_path / "moved.json"))
    _, listed, _ = run(tmp_path, "tenants", "list")
    assert code == 0 and "0 tenant(s) added, 1 updated" in out
    assert "Bo Lee\t9A" in listed and listed.count("Bo Lee") == 1


def test_bad_rows_are_reported_by_line_and_nothing_is_written(tmp_path: Path) -> None:
    bad = GOOD_CSV + "12,No Digits,1\n+15552010003,,4\n+15552010001,Dup,2\n+15552010004,Cy,5,,not-an-email\n"
    (tmp_path / "bad.csv").write_text(bad)
    code, _, err = run(tmp_path, "tenants", "import", str(tmp_path / "bad.csv"))
    _, listed, _ = run(tmp_path, "tenants", "list")
    assert code == 1
    assert "bad.csv line 4: phone '12' needs 10 to 15 digits" in err
    assert "line 5: name is empty" in err and "line 6: phone +15552010001 repeats line 2" in err
    assert "line 7: email 'not-an-email' is not an address" in err
    assert "nothing imported" in err and "Ana" not in listed


def test_skip_bad_imports_the_good_rows(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text(
        json.dumps([{"phone": "5552010005", "name": "Di", "unit": "1"}, {"name": "x"}, 7])
    )
    code, out, err = run(tmp_path, "tenants", "import", "--skip-bad", str(tmp_path / "bad.json"))
    assert code == 0 and "1 tenant(s) added" in out and "2 bad row(s) skipped" in out
    assert "bad.json item 2:" in err and "bad.json item 3: not an object" in err


def test_a_file_without_the_needed_columns_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("number,who\n5552010001,Ana\n")
    code, _, err = run(tmp_path, "tenants", "import", str(tmp_path / "x.csv"))
    assert code == 2 and "lacks phone, name, unit" in err


@pytest.fixture
async def tools(tmp_path: Path) -> JamieTools:
    store = Store(tmp_path / "pete.sqlite3")
    store.open()
    await upsert_tenants(
        store, [TenantRow("+15552010001", "Ana Diaz", "3C", "Elm Row"), TenantRow("+15552010002", "Bo Lee", "7")]
    )
    return JamieTools(PropertyDesk(store))


@pytest.mark.anyio
async def test_lookup_tenant_answers_for_the_number_the_call_comes_from(tools: JamieTools) -> None:
    mine = await tools.run("lookup_tenant", {}, ToolContext("c", caller_number="+1 555 201 0001"))
    same = await tools.run("lookup_tenant", {"phone": "5552010001"}, ToolContext("c", caller_number="+15552010001"))
    assert mine.result == same.result == "Ana Diaz, unit 3C at Elm Row."


@pytest.mark.anyio
async def test_lookup_tenant_refuses_another_number_without_saying_if_it_exists(tools: JamieTools) -> None:
    ctx = ToolContext("c", caller_number="+15552010001")
    known = await tools.run("lookup_tenant", {"phone": "+15552010002"}, ctx)
    unknown = await tools.run("lookup_tenant", {"phone": "+15559999999"}, ctx)
    nobody = await tools.run("lookup_tenant", {"phone": "+15552010002"}, ToolContext("c", caller_number=None))
    assert known.result == unknown.result and "Bo" not in (known.result or "")
    assert nobody.result is not None and "Bo" not in nobody.result and "unknown" in nobody.result


@pytest.mark.anyio
async def test_a_fresh_store_holds_no_demo_tenants(tmp_path: Path) -> None:
    store = Store(tmp_path / "fresh.sqlite3")
    store.open()
    try:
        assert await list_tenants(store) == []
    finally:
        store.close()
