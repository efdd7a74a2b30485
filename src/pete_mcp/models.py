"""The model registry: aliases operators use, mapped to a provider chain and a context window.

Configuration (defaults below, plus an optional JSON `models_file`) gives the specs; the
active alias is persisted state in the store, so it survives a restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, NotFound

__all__ = [
    "JAMIE_SYSTEM_PROMPT",
    "LOCAL_MODELS",
    "PRODUCTION_MODELS",
    "ModelRegistry",
    "ModelSpec",
    "Route",
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

    @property
    def primary(self) -> Route:
        return self.chain[0]

    def card(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "provider": self.primary.provider,
            "provider_model": self.primary.model,
            "fallbacks": [f"{r.provider}:{r.model}" for r in self.chain[1:]],
            "context_window": self.context_window,
            "description": self.description,
        }


def _runpod(alias: str, model: str, ctx: int, description: str, prompt: str | None = None) -> ModelSpec:
    return ModelSpec(alias, (Route("runpod", model),), ctx, description, prompt)


PRODUCTION_MODELS: tuple[ModelSpec, ...] = (
    _runpod(
        "jamie", "peteollama:jamie-fixed", 8192, "Jamie, the property-management voice assistant.", JAMIE_SYSTEM_PROMPT
    ),
    _runpod(
        "property-manager",
        "peteollama:property-manager-v0.0.1",
        8192,
        "Earlier property-manager fine-tune.",
        JAMIE_SYSTEM_PROMPT,
    ),
    _runpod("llama3", "llama3:latest", 8192, "Meta Llama 3 8B instruct."),
    _runpod("codellama", "codellama:7b", 16384, "Code Llama 7B."),
    _runpod("phi3", "phi3:latest", 4096, "Microsoft Phi-3 mini."),
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
        specs = {
            s.alias: ModelSpec(s.alias, (*s.chain, *fallbacks), s.context_window, s.description, s.system_prompt)
            for s in base
        }
        if models_file is not None:
            for spec in _load_models_file(models_file):
                specs[spec.alias] = spec
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

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.specs.values())


def _load_models_file(path: Path) -> list[ModelSpec]:
    """Read `[{"alias", "chain": [{"provider","model"}], "context_window", "description", "system_prompt"}]`."""
    try:
        raw = json.loads(path.read_text())
        return [
            ModelSpec(
                alias=item["alias"],
                chain=tuple(Route(r["provider"], r["model"]) for r in item["chain"]),
                context_window=int(item.get("context_window", 4096)),
                description=item.get("description", ""),
                system_prompt=item.get("system_prompt"),
            )
            for item in raw
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read MODELS_FILE {path}: {exc}") from exc
