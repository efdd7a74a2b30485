"""`pete eval`: run suites through Pete per model, save the scores, and compare them side by side.

For each model: a fresh core (scratch store, the suite's tenants) and its VAPI face, the
suite as an Inspect task (`inspect_task.py`), an Inspect `.eval` log under
`<data_dir>/evals/logs` (`inspect view --log-dir ...` browses it), and one `eval_runs` row
per suite in Pete's own store, which the dashboard, the MCP `run_eval` tool and the quality
gate read. Offline by default: without RunPod credentials the two embedded models are
served by the local llama.cpp server (`backend="local"`); `backend="configured"` uses the
providers Pete is configured with (RunPod, OpenRouter, Ollama, a models file).
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import httpx
from inspect_ai import eval_async
from inspect_ai.log import EvalLog

from pete_mcp.core import ConfigError, ModelProvider, ModelRegistry, Route, Settings, store_from_settings
from pete_mcp.core.eval_scores import EvalRunRow, EvalScoreBook
from pete_mcp.core.models import LOCAL_MODELS
from pete_mcp.gateway import fallback_routes
from pete_mcp.routing import OpenAICompatibleProvider

from .checks import CallRecord
from .inspect_task import pete_model, tenant_call_task
from .player import eval_settings, eval_stack
from .suite import Suite

__all__ = [
    "LOCAL_PROVIDER",
    "Backend",
    "CaseResult",
    "Engine",
    "EvalOptions",
    "ModelResult",
    "ProvidersFn",
    "local_registry",
    "run_evals",
    "save_results",
]

Backend = Literal["auto", "local", "configured"]
LOCAL_PROVIDER = "local-llama"


@dataclass(frozen=True)
class EvalOptions:
    models: Sequence[str]
    suites: Sequence[Suite]
    case_ids: Sequence[str] = ()
    limit: int | None = None
    judge: str | None = None
    max_tokens: int = 96
    backend: Backend = "auto"
    log_dir: Path | None = None
    save: bool = True


@dataclass
class CaseResult:
    case_id: str
    category: str
    checks: dict[str, bool] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    transcript: str = ""

    @property
    def score(self) -> float:
        return sum(self.checks.values()) / len(self.checks) if self.checks else 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(self.checks.values())

    def failing(self) -> list[str]:
        return [f"{self.case_id}: {name}" for name, ok in self.checks.items() if not ok]


@dataclass
class ModelResult:
    model: str
    suite: str
    suite_version: int
    cases: list[CaseResult]
    log_path: str
    seconds: float

    @property
    def score(self) -> float:
        return sum(c.score for c in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def cases_passed(self) -> int:
        return sum(c.passed for c in self.cases)

    def check_rates(self) -> dict[str, float]:
        totals: dict[str, list[bool]] = {}
        for case in self.cases:
            for name, ok in case.checks.items():
                totals.setdefault(name, []).append(ok)
        return {name: sum(oks) / len(oks) for name, oks in sorted(totals.items())}

    def row(self, run_id: str) -> EvalRunRow:
        return EvalRunRow(
            run_id=run_id,
            at=time.time(),
            model=self.model,
            suite=self.suite,
            suite_version=self.suite_version,
            cases=len(self.cases),
            cases_passed=self.cases_passed,
            score=self.score,
            checks=self.check_rates(),
            failing=[f for c in self.cases for f in c.failing()],
            log_path=self.log_path,
        )


def local_registry() -> ModelRegistry:
    """The embedded models (smollm2, gemma3) routed to the local llama.cpp server's provider."""
    specs = {s.alias: replace(s, chain=(Route(LOCAL_PROVIDER, s.primary.model),)) for s in LOCAL_MODELS}
    return ModelRegistry(specs, next(iter(specs)))


ProvidersFn = Callable[[httpx.AsyncClient], Mapping[str, ModelProvider]] | None


@asynccontextmanager
async def _backend(settings: Settings, backend: Backend) -> AsyncIterator[tuple[ModelRegistry, ProvidersFn]]:
    """The registry and providers an eval runs on; the local backend starts the llama.cpp server."""
    if backend == "auto":
        backend = "configured" if settings.uses_real_runpod else "local"
    if backend == "configured":
        yield (
            ModelRegistry.from_config(
                local=not settings.uses_real_runpod,
                models_file=settings.models_file,
                fallbacks=fallback_routes(settings),
                default=settings.active_model,
            ),
            None,
        )
        return
    from pete_mcp.local.model_server import ModelServer

    server = ModelServer(data_dir=settings.data_dir, port=0, n_threads=settings.model_server_threads)
    try:
        await server.astart()
        url = server.url + "/v1"

        def providers(http: httpx.AsyncClient) -> Mapping[str, ModelProvider]:
            provider = OpenAICompatibleProvider(
                LOCAL_PROVIDER, http, base_url=url, timeout_s=600.0, first_token_timeout_s=600.0
            )
            return {LOCAL_PROVIDER: provider}

        yield local_registry(), providers
    finally:
        server.stop()


def _case_results(log: EvalLog, order: Sequence[str]) -> list[CaseResult]:
    """Per case, in suite order: each applicable check's outcome and detail, and the transcript."""
    results: list[CaseResult] = []
    for sample in log.samples or []:
        case = CaseResult(str(sample.id), str(sample.metadata.get("category", "")))
        call = sample.metadata.get("pete_call") or {}
        if call:
            case.transcript = CallRecord.from_dict(call).transcript()
        elif sample.error is not None:
            case.transcript = f"error: {sample.error.message}"
        for name, score in (sample.scores or {}).items():
            if not (score.metadata or {}).get("applicable", True):
                continue
            case.checks[name] = float(score.as_float()) >= 1.0
            case.details[name] = score.explanation or ""
        if not case.checks and sample.error is not None:
            case.checks = {c["name"]: False for c in sample.metadata.get("checks", [])}
        results.append(case)
    rank = {case_id: i for i, case_id in enumerate(order)}
    return sorted(results, key=lambda c: rank.get(c.case_id, len(rank)))


OnModel = Callable[[ModelResult], Awaitable[None]] | None


Engine = tuple[ModelRegistry, ProvidersFn]


async def run_evals(
    settings: Settings, options: EvalOptions, *, on_model: OnModel = None, engine: Engine | None = None
) -> list[ModelResult]:
    """Run every suite on every model; save one `eval_runs` row per (model, suite) when `options.save`.

    `engine` (a registry and a providers factory) replaces the backend: for embedding and tests.

    Raises:
        NotFound: a model alias is not registered on the chosen backend.
        SuiteError: a case id is not in a suite.
        ConfigError: the local backend is missing the `local` extra.
    """
    from inspect_ai.util._display import init_display_type

    init_display_type("none")  # Pete prints its own table; the log viewer shows the rest
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    log_dir = options.log_dir or settings.data_dir / "evals" / "logs"
    selected = [
        (suite, suite.select(ids=list(options.case_ids) or None, limit=options.limit)) for suite in options.suites
    ]
    selected = [(s, cases) for s, cases in selected if cases]
    if not selected:
        raise ConfigError("no cases selected: check --case and --limit.")
    results: list[ModelResult] = []
    async with AsyncExitStack() as stack:
        if engine is None:
            engine = await stack.enter_async_context(_backend(settings, options.backend))
        registry, make_providers = engine
        for alias in options.models:
            registry.get(alias)
            if options.judge:
                registry.get(options.judge)
            for suite, cases in selected:
                result = await _run_one(
                    settings, options, registry, make_providers, alias, suite, cases, run_id, log_dir
                )
                results.append(result)
                if on_model is not None:
                    await on_model(result)
    if options.save:
        await save_results(settings, results, run_id)
    return results


async def _run_one(
    settings: Settings,
    options: EvalOptions,
    registry: ModelRegistry,
    make_providers: ProvidersFn,
    alias: str,
    suite: Suite,
    cases: Sequence[Any],
    run_id: str,
    log_dir: Path,
) -> ModelResult:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pete-eval-") as scratch:
        config = eval_settings(settings, Path(scratch))
        http = httpx.AsyncClient(timeout=httpx.Timeout(600.0, connect=5.0))
        providers = make_providers(http) if make_providers else None
        async with eval_stack(
            config, alias, registry=registry, providers=providers, max_tokens=options.max_tokens
        ) as s:
            if providers is None:
                await http.aclose()
            await s.seed_tenants(suite.tenants)
            judge = pete_model(options.judge, s.core) if options.judge else None
            task = tenant_call_task(
                suite,
                cases,
                s,
                run_id=run_id,
                fixed_phrases=(settings.vapi_apology, "Sorry, could you say that again?"),
                judge=judge,
            )
            logs = await eval_async(
                task,
                model=pete_model(alias, s.core),
                log_dir=str(log_dir),
                max_samples=1,
                log_level="warning",
                score_display=False,
                fail_on_error=False,
                tags=[run_id],
                metadata={"pete_run_id": run_id, "model_alias": alias},
            )
        if providers is not None:
            await http.aclose()
    log = logs[0]
    return ModelResult(
        model=alias,
        suite=suite.suite,
        suite_version=suite.version,
        cases=_case_results(log, [c.id for c in cases]),
        log_path=log.location,
        seconds=time.perf_counter() - started,
    )


async def save_results(settings: Settings, results: Sequence[ModelResult], run_id: str) -> None:
    """One `eval_runs` row per result in Pete's store (the database the gateway opens)."""
    store = store_from_settings(settings)
    store.open()
    try:
        book = EvalScoreBook(store)
        for result in results:
            await book.record(result.row(run_id))
    finally:
        store.close()
