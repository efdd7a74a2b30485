"""The operator panels in headless Chromium (Playwright) against the running app, with real VAPI calls
replayed through the VAPI face: the call list appears and its transcript grows, cancel removes a
job, the deploy confirmation shows both images, the checks grid and the servable models show — at
desktop width and at a 375 px phone width, each checked with axe-core (no serious or critical
violations). axe-core comes from npm (`npm ci`) and is injected into the page as `axe.min.js`.

The desk lists (`/api/desk/*`) are built on another branch: until it merges, this test serves a
tiny STAND-IN of that contract (clearly marked below) so the panel and its close action are driven.

Screenshots at both widths land in the test's tmp dir, or in docs/img/ with PETE_UPDATE_SCREENSHOTS=1.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pete_mcp.app import build_app
from pete_mcp.contract import Message
from pete_mcp.core import Cancelled
from pete_mcp.core.settings import Settings
from pete_mcp.faces._face import Face
from pete_mcp.faces.dashboard import dashboard_face
from pete_mcp.gateway import ChatTurn, Core, build_core
from pete_vapi import vapi_face
from tests.support.mcp import standin_deployer
from tests.support.runpod_rest_standin import RunPodStandIn
from tests.support.scripted import ScriptedProvider
from tests.support.standins import serving
from tests.support.vapi_stack import chat_body, jamie_registry

CHROMIUM = Path(os.environ.get("PETE_CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
TOKEN = "browser-operator-token"
IN_CI = os.environ.get("CI") == "true"

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.browser,
    pytest.mark.skipif(
        not IN_CI and not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    ),
    pytest.mark.skipif(not IN_CI and not AXE.exists(), reason="axe-core is not installed (npm ci)"),
]

pytest.importorskip("playwright.async_api", reason="playwright is not installed (uv sync --dev)")
from playwright.async_api import Browser, Page, async_playwright, expect  # noqa: E402


# --- STAND-IN (test only) for the desk contract built on another branch -------------------------
def desk_standin() -> Face:
    """`GET /api/desk/{kind}` and `POST /api/desk/{kind}/{id}/close`, as the desk branch specifies them."""
    items = {
        "tickets": [
            {
                "id": 1001,
                "kind": "ticket",
                "status": "open",
                "summary": "Kitchen cabinet door loose",
                "unit": "4B",
                "category": "general",
                "urgency": "routine",
                "caller": "***-***-4567",
            }
        ]
    }

    async def listing(request: Request) -> JSONResponse:
        kind, status = request.path_params["kind"], request.query_params.get("status", "open")
        rows = [i for i in items.get(kind, []) if status == "all" or i["status"] == status]
        return JSONResponse({"kind": kind, "items": rows})

    async def close(request: Request) -> JSONResponse:
        kind, item_id = request.path_params["kind"], int(request.path_params["item_id"])
        for row in items.get(kind, []):
            if row["id"] == item_id:
                row["status"] = "closed"
                return JSONResponse(row)
        return JSONResponse({"error": {"code": "not_found", "message": f"no {kind} {item_id}"}}, status_code=404)

    return Face(
        "desk-standin",
        [Route("/api/desk/{kind}", listing), Route("/api/desk/{kind}/{item_id}/close", close, methods=["POST"])],
    )


# --- end of the stand-in ---------------------------------------------------------------------------


@dataclass
class Running:
    url: str
    core: Core
    slow: ScriptedProvider


@pytest.fixture
async def running(tmp_path: Path, runpod_standin: RunPodStandIn) -> AsyncIterator[Running]:
    settings = Settings(data_dir=tmp_path, mcp_token=TOKEN, hedging=False)  # type: ignore[arg-type]
    slow = ScriptedProvider("local", job_prefix="rp")
    core = build_core(settings, providers={"local": slow}, registry=jamie_registry("local"))
    faces = [
        vapi_face(core),
        desk_standin(),
        dashboard_face(core, services=False, deployer=standin_deployer(core, runpod_standin)),
    ]
    async with serving(build_app(core, faces=faces)) as url:
        yield Running(url, core, slow)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


async def open_page(browser: Browser, url: str, width: int) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": 900})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url + "/")
    await expect(page.locator("#conn-status")).to_have_text("live", timeout=15_000)
    assert errors == [], f"the page's scripts failed: {errors}"
    return page


async def serious_violations(page: Page) -> list[str]:
    await page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def vapi_turn(url: str, *said: str, call_id: str = "call-1") -> None:
    lines: list[tuple[str, str]] = []
    for i, text in enumerate(said):
        lines.append(("user", text))
        if i < len(said) - 1:
            lines.append(("assistant", "Hello there."))
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        response = await http.post("/vapi/chat/completions", json=chat_body(*lines, call_id=call_id))
        assert response.status_code == 200


async def screenshot(page: Page, tmp_path: Path, name: str) -> None:
    target = DOCS_IMG if os.environ.get("PETE_UPDATE_SCREENSHOTS") == "1" else tmp_path
    await page.screenshot(path=str(target / name), full_page=True)


@pytest.mark.parametrize("width", [1280, 375])
async def test_the_operator_panels_work_as_a_person_uses_them(
    running: Running, browser: Browser, tmp_path: Path, width: int
) -> None:
    page = await open_page(browser, running.url, width)
    await page.get_by_label("Token", exact=True).fill(TOKEN)

    # checks grid and models as they are
    await expect(page.locator("#health-grid .tile").first).to_be_visible(timeout=15_000)
    await expect(page.locator("#models-list")).to_contain_text("servable")

    # a live call appears, and its transcript grows as the caller speaks
    await vapi_turn(running.url, "My cabinet door is loose, unit 4B")
    row = page.locator("#live-calls-table tbody tr", has_text="4567")
    await expect(row).to_contain_text("unit 4B", timeout=5_000)
    await row.get_by_role("button", name="Transcript").click()
    await expect(page.locator("#transcript-list")).to_contain_text("My cabinet door is loose")
    await vapi_turn(running.url, "My cabinet door is loose, unit 4B", "It is the kitchen one")
    await expect(page.locator("#transcript-list li")).to_have_count(4, timeout=5_000)
    await expect(page.locator("#transcript-list")).to_contain_text("It is the kitchen one")

    # the desk (stand-in contract): an open ticket, closed from the page
    await expect(page.locator("#desk-list")).to_contain_text("Kitchen cabinet door loose")
    await page.get_by_role("button", name="Close ticket 1001").click()
    await page.locator("#confirm-ok").click()
    await expect(page.locator("#desk-status-line")).to_contain_text("Closed #1001")

    # a running job is listed, and cancel removes it
    running.slow.first_token_delay_s = 30.0
    async with anyio.create_task_group() as tg:

        async def ask() -> None:
            with pytest.raises(Cancelled):
                await running.core.complete(ChatTurn([Message(role="user", content="hi")], source="cli"))

        tg.start_soon(ask)
        job_row = page.locator("#active-jobs-table tbody tr", has_text="rp-")
        await expect(job_row).to_be_visible(timeout=5_000)
        await job_row.get_by_role("button", name="Cancel job").click()
        await expect(page.locator("#confirm-dialog")).to_be_visible()
        await page.locator("#confirm-ok").click()
        await expect(page.locator("#jobs-status")).to_contain_text("Cancelled rp-")
        await expect(page.locator("#active-jobs-table")).to_contain_text("No jobs running.", timeout=5_000)
    running.slow.first_token_delay_s = 0.0

    # deploy asks first, showing the current and the new image
    await page.locator("#deploy-image").fill("registry.example/pete-worker:2.0.0")
    await page.get_by_role("button", name="Deploy", exact=True).click()
    await expect(page.locator("#confirm-new")).to_have_text("registry.example/pete-worker:2.0.0")
    await expect(page.locator("#confirm-current")).not_to_have_text("–")
    await screenshot(page, tmp_path, f"dashboard-operator-{width}.png")
    await page.locator("#confirm-cancel").click()
    await expect(page.locator("#deploy-status")).to_contain_text("nothing changed")

    assert await serious_violations(page) == []
