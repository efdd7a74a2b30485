"""Which path `pete eval`'s model calls take: the running gateway when one answers, else in-process.

`--backend local` always runs the embedded llama.cpp models in-process (offline, free). Otherwise,
when a gateway answers, the eval's registry is the gateway's model list and every model call (the
judge's too) is a `POST /api/prompt` tagged `source: "eval"` (`_gateway_provider.py`), so it counts
in the gateway's metrics; when none answers, `run_evals` picks its backend as before.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace

from pete_mcp.core import Settings
from pete_mcp.evals import EvalOptions, ModelResult, run_evals
from pete_mcp.evals.runner import local_registry

from ._gateway import find_gateway, say_path
from ._gateway_provider import gateway_providers, gateway_registry

__all__ = ["run_routed"]

DEFAULT_LOCAL_MODEL = "smollm2"


async def run_routed(
    settings: Settings, options: EvalOptions, on_model: Callable[[ModelResult], Awaitable[None]] | None = None
) -> list[ModelResult]:
    """`run_evals` with the model calls sent the way `options.backend` and a running gateway decide."""
    in_process = replace(options, models=options.models or [settings.active_model or DEFAULT_LOCAL_MODEL])
    if options.backend == "local":
        print(
            "→ the embedded llama.cpp models, in-process (--backend local; the gateway will not see this eval)",
            file=sys.stderr,
        )
        for alias in [*in_process.models, *([in_process.judge] if in_process.judge else [])]:
            local_registry().get(alias)  # NotFound before a model server starts
        return await run_evals(settings, in_process, on_model=on_model)
    async with find_gateway(settings) as gateway:
        real = options.backend == "configured" or settings.uses_real_runpod
        say_path(
            settings,
            gateway,
            through='model calls tagged source "eval": they count in its metrics and show on its page',
            in_process="running in-process on "
            + ("the configured providers" if real else "the embedded llama.cpp models")
            + " (the dashboard will not see this eval)",
        )
        if gateway is not None:
            registry = await gateway_registry(gateway)
            chosen = replace(options, models=options.models or [registry.default])
            engine = (registry, gateway_providers(gateway))
            return await run_evals(settings, chosen, on_model=on_model, engine=engine)
    return await run_evals(settings, in_process, on_model=on_model)
