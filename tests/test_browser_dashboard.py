"""The dashboard in headless Chromium (Playwright) against the real app, core and local model.

The app runs under uvicorn on a loopback port in the test's event loop, over a real core
whose provider is the llama.cpp model server (SmolLM2 and gemma). The page is driven like
a person would: it must load, follow live figures, switch the model (checked through the
MCP `list_models` tool), stream a test prompt, and refuse actions without the token.
Screenshots at desktop and phone widths land in the test's tmp dir, or in docs/img/ with
PETE_UPDATE_SCREENSHOTS=1 (how the committed ones were made).
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mcp import Client

from pete_mcp.app import build_app
from pete_mcp.contract import ChatOptions, Message
from pete_mcp.core.models import JAMIE_SYSTEM_PROMPT, ModelRegistry, ModelSpec, Route
from pete_mcp.core.provider import ModelProvider
from pete_mcp.core.settings import Settings
from pete_mcp.faces.dashboard import dashboard_face
from pete_mcp.faces.mcp.server import build_mcp_server
from pete_mcp.gateway import ChatTurn, Core, build_core
from pete_mcp.local.localpod import DEFAULT_WORKER_COMMAND, LocalPodConfig
from pete_mcp.routing.providers.openai_compatible import OpenAICompatibleProvider
from pete_mcp.routing.providers.runpod import RunPodProvider
from pete_mcp.runpod.client import RunPodClient
from tests.support.localpod import running_localpod
from tests.support.model_server import RunningModelServer
from tests.support.require import require, require_module
from tests.support.standins import serving

CHROMIUM = Path(os.environ.get("PETE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
TOKEN = "browser-test-token"

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.browser,
]
require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
require_module("playwright.async_api", "playwright is not installed (uv sync --dev)")
from playwright.async_api import Browser, Page, async_playwright, expect  # noqa: E402


@dataclass
class Running:
    url: str
    core: Core


@asynccontextmanager
async def app_over(
    tmp_path: Path, providers: dict[str, ModelProvider], registry: ModelRegistry, http: httpx.AsyncClient
) -> AsyncIterator[Running]:
    """The app on a free port: dashboard face (with its metrics service and alert engine) over a real core."""
    settings = Settings(
        data_dir=tmp_path / "pete",
        mcp_token=TOKEN,  # type: ignore[arg-type]
        metrics_poll_interval_s=2.0,
        switch_budget_s=120.0,
    )
    core = build_core(settings, http=http, providers=providers, registry=registry)
    async with serving(build_app(core, faces=[dashboard_face(core)])) as url:
        yield Running(url, core)


def local_provider(model_server: RunningModelServer, http: httpx.AsyncClient) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider("local", http, base_url=model_server.url + "/v1", first_token_timeout_s=120)


@pytest.fixture
async def running(tmp_path: Path, model_server: RunningModelServer) -> AsyncIterator[Running]:
    """The model server as the core's only provider."""
    http = httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=5.0))
    registry = ModelRegistry(
        {
            "smollm2": ModelSpec(
                "smollm2", (Route("local", model_server.chat_model),), 2048, "SmolLM2 (local)", JAMIE_SYSTEM_PROMPT
            ),
            "gemma3": ModelSpec("gemma3", (Route("local", model_server.base_model),), 2048, "gemma (local)"),
        },
        "smollm2",
    )
    async with app_over(tmp_path, {"local": local_provider(model_server, http)}, registry, http) as app:
        yield app


@pytest.fixture
async def running_on_localpod(
    tmp_path: Path, model_server: RunningModelServer, localpod_config: Callable[..., LocalPodConfig], runpod_sdk: None
) -> AsyncIterator[Running]:
    """The whole local stack: RunPod provider → local endpoint → real gpu_handler worker → llama.cpp,
    with the model server itself as the fallback provider."""
    config = localpod_config(
        worker_command=DEFAULT_WORKER_COMMAND,
        worker_env={"WORKER_MODEL_URL": model_server.url, "WORKER_BACKEND": "openai", "WORKER_CONCURRENCY": "2"},
    )
    async with running_localpod(config) as pod:
        http = httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=5.0))
        client = RunPodClient(http, base_url=pod.url, endpoint_id=pod.endpoint_id, api_key=pod.api_key)
        providers: dict[str, ModelProvider] = {
            "runpod": RunPodProvider(client, use_openai_route=True),
            "local": local_provider(model_server, http),
        }
        chat, base = model_server.chat_model, model_server.base_model
        registry = ModelRegistry(
            {
                "smollm2": ModelSpec(
                    "smollm2", (Route("runpod", chat), Route("local", chat)), 2048, "SmolLM2", JAMIE_SYSTEM_PROMPT
                ),
                "gemma3": ModelSpec("gemma3", (Route("runpod", base), Route("local", base)), 2048, "gemma"),
            },
            "smollm2",
        )
        async with app_over(tmp_path, providers, registry, http) as app:
            yield app


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


async def open_page(browser: Browser, url: str, *, width: int = 1280, height: int = 900) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url + "/")
    await expect(page.locator("#conn-status")).to_have_text("live", timeout=15_000)
    assert errors == [], f"the page's scripts failed: {errors}"
    return page


async def ask(core: Core, text: str = "When is rent due?") -> None:
    turn = ChatTurn([Message(role="user", content=text)], options=ChatOptions(max_tokens=12, temperature=0.0))
    await core.complete(turn)


async def test_the_page_loads_with_health_status_and_models(running: Running, browser: Browser) -> None:
    page = await open_page(browser, running.url)
    await expect(page).to_have_title("Pete — status")
    await expect(page.locator("#health-summary")).to_have_text(re.compile(r"^\d+/\d+ checks ok$"))
    await expect(page.locator("#active-model")).to_have_text("smollm2")
    await expect(page.locator("#models-available")).to_have_text("2 of 2")  # servable of registered
    await expect(page.locator("#endpoint-state")).to_have_text("N/A")  # no RunPod provider here
    await expect(page.get_by_role("heading", name="Quick actions")).to_be_visible()


async def test_live_figures_change_as_requests_flow(running: Running, browser: Browser) -> None:
    page = await open_page(browser, running.url)
    await expect(page.locator("#requests-24h")).to_have_text("0")
    await ask(running.core)
    await ask(running.core, "Can I paint my walls?")
    await expect(page.locator("#requests-24h")).to_have_text("2", timeout=15_000)
    await expect(page.locator("#success-rate")).to_have_text("100%")
    await expect(page.locator("#events-list")).to_contain_text("request.done")
    await expect(page.locator("#models-table tbody")).to_contain_text("smollm2")
    model = running.core.metrics.snapshot()["models"][0]
    assert model["output_tokens"] > 0
    tokens = f"{model['input_tokens']} / {model['output_tokens']}"  # the table's tokens in/out
    await expect(page.locator("#models-table tbody")).to_contain_text(tokens)
    label = await page.locator("#chart-ttft").get_attribute("aria-label")
    assert label is not None and "p95" in label


async def test_a_switch_from_the_page_changes_the_active_model(running: Running, browser: Browser) -> None:
    page = await open_page(browser, running.url)
    await page.get_by_label("Token", exact=True).fill(TOKEN)
    await page.get_by_label("New active model").select_option("gemma3")
    await page.get_by_role("button", name="Switch", exact=True).click()
    await expect(page.locator("#switch-status")).to_contain_text("Switched from smollm2 to gemma3", timeout=180_000)
    await expect(page.locator("#active-model")).to_have_text("gemma3")
    async with Client(build_mcp_server(running.core), raise_exceptions=True) as mcp:
        listed = await mcp.call_tool("list_models", {})
    assert listed.structured_content is not None and listed.structured_content["active"] == "gemma3"
    assert running.core.active_alias == "gemma3"


async def test_a_test_prompt_streams_into_the_page(running: Running, browser: Browser) -> None:
    page = await open_page(browser, running.url)
    await page.get_by_label("Token", exact=True).fill(TOKEN)
    await page.get_by_label("Prompt", exact=True).fill("Hi, my sink is leaking. What should I do?")
    # Record every text the answer box shows, and what the status said at that moment.
    await page.evaluate(
        """() => {
            window.seen = [];
            const output = document.getElementById('prompt-output');
            const status = document.getElementById('prompt-status');
            new MutationObserver(() => window.seen.push([output.textContent, status.textContent]))
                .observe(output, {childList: true, characterData: true, subtree: true});
        }"""
    )
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator("#prompt-status")).to_contain_text("Done: smollm2 on local", timeout=120_000)
    seen: list[list[str]] = await page.evaluate("window.seen")
    texts = [text for text, _ in seen if text]
    assert len(set(texts)) >= 2, f"the answer arrived in one piece: {seen}"
    assert any(status.startswith("Streaming") for text, status in seen if text), seen
    answer = await page.locator("#prompt-output").text_content()
    assert answer and answer.strip() and answer == texts[-1]


async def test_actions_without_the_token_are_refused(running: Running, browser: Browser) -> None:
    page = await open_page(browser, running.url)
    await expect(page.get_by_label("Token", exact=True)).to_have_value("")
    await page.get_by_label("New active model").select_option("gemma3")
    await page.get_by_role("button", name="Switch", exact=True).click()
    await expect(page.locator("#switch-status")).to_contain_text("MCP_TOKEN")
    await expect(page.locator("#switch-status")).to_contain_text("401")
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(page.locator("#prompt-status")).to_contain_text("401")
    await page.get_by_role("button", name="View recent logs").click()
    await expect(page.locator("#logs-status")).to_contain_text("401")
    assert running.core.active_alias == "smollm2"
    assert running.core.metrics.snapshot()["totals"]["requests"] == 0


async def test_the_page_fits_a_phone_and_is_keyboard_usable(running: Running, browser: Browser) -> None:
    page = await open_page(browser, running.url, width=390, height=844)
    overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    wide = await page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .filter(e => !e.parentElement.closest('.table-wrap'))  // scrolls inside its own box
            .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)"""
    )
    assert overflow <= 0, f"the page scrolls sideways on a phone: {wide}"
    await page.keyboard.press("Tab")
    await expect(page.locator(".skip-link")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#main")).to_be_focused()
    await page.get_by_label("Token", exact=True).focus()
    await page.keyboard.type(TOKEN)
    await page.keyboard.press("Tab")  # the Forget button, then the prompt box: all reachable in order
    await expect(page.locator("#token-clear")).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Prompt", exact=True)).to_be_focused()


async def test_screenshots_at_desktop_and_phone_widths(
    running_on_localpod: Running, browser: Browser, tmp_path: Path
) -> None:
    running = running_on_localpod
    screenshots = DOCS_IMG if os.environ.get("PETE_UPDATE_SCREENSHOTS") == "1" else tmp_path
    await running.core.warm(running.core.active)  # load the model first: the figures show steady state
    screenshots.mkdir(parents=True, exist_ok=True)
    desktop = await open_page(browser, running.url, width=1280, height=900)
    await running.core.conversations.record("call-demo", [Message(role="user", content="Hello?")], source="vapi")
    running.core.events.publish("call.started", call_id="call-demo")
    for text in ("When is rent due?", "My heater is broken.", "Can I get a parking spot?"):
        await ask(running.core, text)
    phone = await open_page(browser, running.url, width=390, height=844)
    for name, page in (("desktop", desktop), ("phone", phone)):
        await expect(page.locator("#requests-24h")).to_have_text("3", timeout=15_000)
        await expect(page.locator("#endpoint-state")).to_have_text("LIVE", timeout=15_000)
        await expect(page.locator("#health-summary")).to_contain_text("checks ok", timeout=15_000)
        await expect(page.locator("#live-calls")).to_have_text("1")
        await expect(page.locator("#active-conversations")).to_have_text("1", timeout=15_000)
        path = screenshots / f"dashboard-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
