"""The model registry: aliases operators use, mapped to a provider chain and a context window.

Configuration (defaults below, plus an optional JSON `models_file`) gives the specs; the
active alias is persisted state in the store, so it survives a restart. The built-in
models run on RunPod first; the configured fallbacks (`FALLBACKS`: OpenRouter, direct
Ollama) are appended to their chains. A models file gives each of its models an explicit
chain. A fallback `Route` with an empty model serves the primary's model name (Ollama
carries the same tags the RunPod worker bakes in).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pete_mcp.contract import ChatOptions

from .errors import ConfigError, NotFound

__all__ = [
    "JAMIE_SYSTEM_PROMPT",
    "LOCAL_MODELS",
    "PRODUCTION_MODELS",
    "ModelRegistry",
    "ModelSpec",
    "Route",
    "served_options",
    "with_fallbacks",
]

JAMIE_SYSTEM_PROMPT = (
    "You are Jamie, the phone assistant of a property-management company. You help tenants with "
    "maintenance requests, rent and lease questions, and messages for the office. Answer in one or two "
    "short, friendly sentences that sound natural when spoken. Ask for the unit number when you need it. "
    "Never give legal advice; offer to take a message for the property manager instead."
)


@dataclass(frozen=True, slots=True)
class Route:
    """One step of a provider chain: which provider, and that provider's name for the model."""

    provider: str
    model: str


@dataclass(frozen=True, slots=True)
class ModelSpec:
    alias: str
    chain: tuple[Route, ...]
    context_window: int = 4096
    description: str = ""
    system_prompt: str | None = None
    parameters: tuple[tuple[str, float | int], ...] = ()
    """Sampling defaults the model is served with (an Ollama Modelfile's `PARAMETER` lines, `num_ctx`
    aside: that is `context_window`). `tests/test_modelfiles.py` checks the Modelfiles against them."""

    @property
    def primary(self) -> Route:
        return self.chain[0]

    def __post_init__(self) -> None:
        if not self.chain:
            raise ConfigError(f"model {self.alias!r} has an empty provider chain.")
        if self.context_window <= 0:
            raise ConfigError(f"model {self.alias!r}: context_window must be a positive number of tokens.")

    def card(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "provider": self.primary.provider,
            "provider_model": self.primary.model,
            "chain": [f"{r.provider}:{r.model}" for r in self.chain],
            "fallbacks": [f"{r.provider}:{r.model}" for r in self.chain[1:]],
            "context_window": self.context_window,
            "parameters": dict(self.parameters),
            "description": self.description,
        }


def _runpod(
    alias: str,
    model: str,
    ctx: int,
    description: str,
    prompt: str | None = None,
    **parameters: float | int,
) -> ModelSpec:
    return ModelSpec(alias, (Route("runpod", model),), ctx, description, prompt, tuple(sorted(parameters.items())))


# Every built-in production model runs on RunPod, so `Dockerfile.serverless` bakes exactly these
# (its BAKED_MODELS build argument; tests/test_dockerfile.py reads one against the other). Llama 3
# is trained on 8192 tokens: each model is served with that window (Ollama's `num_ctx`).
PRODUCTION_MODELS: tuple[ModelSpec, ...] = (
    _runpod(
        "jamie",
        "peteollama:jamie-fixed",
        8192,
        "Jamie, the property-management voice assistant.",
        JAMIE_SYSTEM_PROMPT,
        temperature=0.6,
        top_p=0.9,
        num_predict=256,
    ),
    _runpod(
        "property-manager",
        "peteollama:property-manager-v0.0.1",
        8192,
        "Earlier property-manager fine-tune.",
        JAMIE_SYSTEM_PROMPT,
        temperature=0.4,
    ),
    _runpod("llama3", "llama3:latest", 8192, "Meta Llama 3 8B instruct."),
)

# What the embedded local stack (llama.cpp server behind the local RunPod endpoint) serves.
LOCAL_MODELS: tuple[ModelSpec, ...] = (
    _runpod("smollm2", "smollm2", 2048, "SmolLM2-135M-Instruct (local, CPU).", JAMIE_SYSTEM_PROMPT),
    _runpod("gemma3", "gemma3-270m", 2048, "gemma-3-270m base (local, CPU; rambles).", None),
)


@dataclass
class ModelRegistry:
    """Alias → spec, in configuration order; `default` is the alias to start on."""

    specs: dict[str, ModelSpec] = field(default_factory=dict)
    default: str = ""

    @classmethod
    def from_config(
        cls,
        *,
        local: bool,
        models_file: Path | None = None,
        fallbacks: tuple[Route, ...] = (),
        default: str = "",
    ) -> ModelRegistry:
        """Build the registry: local models first on the local stack, then production ones, then the file."""
        base = (*LOCAL_MODELS, *PRODUCTION_MODELS) if local else PRODUCTION_MODELS
        specs = {s.alias: with_fallbacks(s, fallbacks) for s in base}
        if models_file is not None:
            for spec, inherit in _load_models_file(models_file):
                specs[spec.alias] = with_fallbacks(spec, fallbacks) if inherit else spec
        chosen = default or next(iter(specs))
        if chosen not in specs:
            raise ConfigError(f"ACTIVE_MODEL={chosen!r} is not a registered model ({', '.join(specs)}).")
        return cls(specs, chosen)

    def get(self, alias: str) -> ModelSpec:
        try:
            return self.specs[alias]
        except KeyError:
            raise NotFound(f"unknown model {alias!r}.", hint=f"Registered models: {', '.join(self.specs)}.") from None

    def __contains__(self, alias: object) -> bool:
        return alias in self.specs

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self.specs.values())

    def __len__(self) -> int:
        return len(self.specs)


def served_options(spec: ModelSpec, options: ChatOptions) -> ChatOptions:
    """`options` with the model's registered context window as `num_ctx`.

    Why: Ollama loads a model at its own default window (2048–4096 tokens) unless a request
    names one, and then silently drops the start of a longer prompt. A caller's smaller
    `num_ctx` is kept; a larger one is cut to the registered window. OpenAI-compatible
    servers never see it (`chat_body` leaves it out).
    """
    wanted = spec.context_window if options.num_ctx is None else min(options.num_ctx, spec.context_window)
    if options.num_ctx == wanted:
        return options
    return options.model_copy(update={"num_ctx": wanted})


def with_fallbacks(spec: ModelSpec, fallbacks: Sequence[Route]) -> ModelSpec:
    """`spec` with `fallbacks` appended to its chain (an empty fallback model = the primary's model)."""
    chain = list(spec.chain)
    for fallback in fallbacks:
        route = Route(fallback.provider, fallback.model or spec.primary.model)
        if route not in chain:
            chain.append(route)
    return replace(spec, chain=tuple(chain))


def _load_models_file(path: Path) -> list[tuple[ModelSpec, bool]]:
    """Read the models file: a JSON list of model definitions.

    Each item: `{"alias", "chain": [{"provider", "model"}, ...], "context_window",
    "description", "system_prompt", "parameters": {}, "fallbacks": false}`; `"fallbacks": true` appends the
    configured fallback providers to the chain. Returns (spec, inherit fallbacks) pairs.
    """

    def chain_of(item: dict[str, Any]) -> tuple[Route, ...]:
        routes = [Route(str(r["provider"]), str(r.get("model", ""))) for r in item["chain"]]
        if routes and not routes[0].model:
            raise ConfigError(f"model {item['alias']!r}: the first route needs a model name.")
        return tuple(Route(r.provider, r.model or routes[0].model) for r in routes)

    try:
        raw = json.loads(path.read_text())
        return [
            (
                ModelSpec(
                    alias=item["alias"],
                    chain=chain_of(item),
                    context_window=int(item.get("context_window", 4096)),
                    description=item.get("description", ""),
                    system_prompt=item.get("system_prompt"),
                    parameters=tuple(sorted((str(k), v) for k, v in (item.get("parameters") or {}).items())),
                ),
                bool(item.get("fallbacks", False)),
            )
            for item in raw
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read MODELS_FILE {path}: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"MODELS_FILE {path}: {exc}") from exc
