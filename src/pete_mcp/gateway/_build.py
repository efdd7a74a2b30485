"""`build_core`: the one place that wires settings, store, registry, providers, router, metrics and events."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import httpx

from pete_mcp.core import (
    Conversations,
    EventBus,
    ModelProvider,
    ModelRegistry,
    Route,
    Settings,
    store_from_settings,
)
from pete_mcp.metrics import Metrics, Telemetry
from pete_mcp.routing import (
    BreakerPolicy,
    HedgeBudget,
    HedgePolicy,
    Router,
    Watchdogs,
)
from pete_mcp.runpod import KeepWarm, KeepWarmSchedule

from ._core import Core
from ._http import outbound_http

__all__ = ["breaker_policy", "build_core", "default_providers", "fallback_routes", "hedge_policy"]

log = logging.getLogger(__name__)


def default_providers(settings: Settings, http: httpx.AsyncClient) -> dict[str, ModelProvider]:
    """The providers the settings configure: RunPod (real or local) and any fallbacks."""
    from pete_mcp.routing import OllamaProvider, OpenAICompatibleProvider

    providers: dict[str, ModelProvider] = {}
    try:
        from pete_mcp.routing import RunPodLBProvider, RunPodProvider, WorkerAffinity
        from pete_mcp.runpod import lb_client_from_settings, runpod_client_from_settings

        if settings.runpod_endpoint_type == "load_balancer":
            providers["runpod"] = RunPodLBProvider(
                lb_client_from_settings(settings, http),
                affinity=WorkerAffinity(ttl_s=settings.runpod_affinity_ttl_s),
                health_poll_s=settings.runpod_health_poll_s,
                worker_slots=settings.runpod_worker_concurrency,
            )
        else:
            providers["runpod"] = RunPodProvider(
                runpod_client_from_settings(settings, http),
                use_openai_route=settings.runpod_use_openai_route,
                health_poll_s=settings.runpod_health_poll_s,
                worker_slots=settings.runpod_worker_concurrency,
            )
    except ImportError:  # pragma: no cover - during bootstrap only
        log.warning("RunPod provider not available")
    if settings.openrouter_api_key is not None:
        providers["openrouter"] = OpenAICompatibleProvider(
            "openrouter",
            http,
            base_url=settings.openrouter_base_url,
            api_key=settings.openrouter_api_key.get_secret_value(),
            headers={"HTTP-Referer": settings.openrouter_referer or "", "X-Title": settings.openrouter_title},
        )
    if settings.ollama_url:
        providers["ollama"] = OllamaProvider("ollama", http, base_url=settings.ollama_url)
    return providers


def fallback_routes(settings: Settings) -> tuple[Route, ...]:
    """The fallback steps appended to built-in models, in `FALLBACKS` order, configured ones only.

    OpenRouter serves `OPENROUTER_MODEL`; direct Ollama serves `OLLAMA_MODEL` or, when that is
    empty, the same tag as RunPod (an empty route model means "the primary's").
    """
    configured = {
        "openrouter": Route("openrouter", settings.openrouter_model) if settings.openrouter_api_key else None,
        "ollama": Route("ollama", settings.ollama_model) if settings.ollama_url else None,
    }
    routes: list[Route] = []
    for name in (n.strip() for n in settings.fallbacks.split(",")):
        route = configured.get(name)
        if route is not None and route not in routes:
            routes.append(route)
    return tuple(routes)


def hedge_policy(settings: Settings) -> HedgePolicy:
    return HedgePolicy(
        enabled=settings.hedging,
        fixed_after_s=settings.hedge_after_s,
        floor_s=settings.hedge_floor_s,
        ceiling_s=settings.hedge_ceiling_s,
        initial_s=settings.hedge_ceiling_s,
        rescue_multiple=settings.hedge_rescue_multiple,
        budget=HedgeBudget(ratio=settings.hedge_budget, burst=settings.hedge_burst),
    )


def breaker_policy(settings: Settings) -> BreakerPolicy:
    return BreakerPolicy(
        failure_threshold=settings.breaker_failures,
        error_rate=settings.breaker_error_rate,
        min_requests=settings.breaker_min_requests,
        window_s=settings.breaker_window_s,
        cooldown_s=settings.breaker_cooldown_s,
    )


def _keepwarm(settings: Settings, providers: Mapping[str, ModelProvider], core_ref: list[Core]) -> KeepWarm | None:
    """The keep-warm schedule, when KEEPWARM_HOURS is set and a RunPod provider exists."""
    if not settings.keepwarm_hours or "runpod" not in providers:
        return None
    runpod = providers["runpod"]

    def active_runpod_model() -> str | None:
        core = core_ref[0]
        return next((r.model for r in core.active.chain if r.provider == "runpod"), None)

    return KeepWarm(
        KeepWarmSchedule.parse(settings.keepwarm_hours),
        schedule_text=settings.keepwarm_hours,
        warm=runpod.warm,
        model=active_runpod_model,
        gpu=settings.keepwarm_gpu,
        workers=settings.keepwarm_workers,
        interval_s=settings.keepwarm_interval_s,
    )


def build_core(
    settings: Settings,
    *,
    http: httpx.AsyncClient | None = None,
    providers: Mapping[str, ModelProvider] | None = None,
    registry: ModelRegistry | None = None,
    telemetry: Telemetry | None = None,
) -> Core:
    """Wire the core. Use as `async with build_core(settings) as core:`.

    `telemetry` lets a test attach OpenTelemetry's in-memory span exporter and metric reader.
    """
    http = http or outbound_http(httpx.Timeout(settings.runpod_timeout_s, connect=5.0))
    events = EventBus()
    store = store_from_settings(settings)
    registry = registry or ModelRegistry.from_config(
        local=not settings.uses_real_runpod,
        models_file=settings.models_file,
        fallbacks=fallback_routes(settings),
        default=settings.active_model,
    )
    providers = dict(providers) if providers is not None else default_providers(settings, http)
    telemetry = telemetry or Telemetry(
        service_name=settings.otel_service_name, otlp_endpoint=settings.otel_exporter_otlp_endpoint
    )
    router = Router(
        providers,
        events,
        hedge=hedge_policy(settings),
        breaker_policy=breaker_policy(settings),
        watchdogs=Watchdogs(first_token_s=settings.first_token_timeout_s, stall_s=settings.stall_timeout_s),
    )
    router.tracer = telemetry.tracer
    core_ref: list[Core] = []
    core = Core(
        settings=settings,
        http=http,
        store=store,
        models=registry,
        router=router,
        metrics=Metrics(telemetry=telemetry),
        events=events,
        conversations=Conversations(store),
        keepwarm=_keepwarm(settings, providers, core_ref),
    )
    core_ref.append(core)
    return core
