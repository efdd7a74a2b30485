"""The model registry: built-in models, fallback chains, the models file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gpu_handler import BAKED_MODELS
from pydantic import SecretStr

from pete_mcp.core.errors import ConfigError, NotFound
from pete_mcp.core.models import LOCAL_MODELS, PRODUCTION_MODELS, ModelRegistry, ModelSpec, Route
from pete_mcp.core.settings import Settings
from pete_mcp.gateway import fallback_routes
from pete_mcp.local.model_server import GEMMA_ALIAS, SMOLLM2_ALIAS


def test_production_models_are_exactly_what_the_worker_image_bakes() -> None:
    assert [s.primary.model for s in PRODUCTION_MODELS] == list(BAKED_MODELS)
    assert [s.alias for s in PRODUCTION_MODELS] == ["jamie", "property-manager", "llama3"]
    assert {s.primary.provider for s in PRODUCTION_MODELS} == {"runpod"}


def test_local_models_are_what_the_local_model_server_serves() -> None:
    assert {s.alias: s.primary.model for s in LOCAL_MODELS} == {"smollm2": SMOLLM2_ALIAS, "gemma3": GEMMA_ALIAS}


def test_the_local_stack_lists_local_models_first_and_production_ones_too() -> None:
    local = ModelRegistry.from_config(local=True)
    assert [s.alias for s in local][:2] == ["smollm2", "gemma3"]
    assert local.default == "smollm2"
    real = ModelRegistry.from_config(local=False)
    assert "smollm2" not in real and real.default == "jamie"
    assert real.get("jamie").primary == Route("runpod", "peteollama:jamie-fixed")


def test_fallbacks_follow_the_configured_order_and_ollama_serves_the_same_tag() -> None:
    settings = Settings(
        openrouter_api_key=SecretStr("sk-or"),
        ollama_url="http://127.0.0.1:11434",
        fallbacks="ollama,openrouter",
    )
    registry = ModelRegistry.from_config(local=False, fallbacks=fallback_routes(settings))
    assert registry.get("jamie").chain == (
        Route("runpod", "peteollama:jamie-fixed"),
        Route("ollama", "peteollama:jamie-fixed"),
        Route("openrouter", "meta-llama/llama-3.1-8b-instruct"),
    )
    assert registry.get("jamie").card()["fallbacks"] == [
        "ollama:peteollama:jamie-fixed",
        "openrouter:meta-llama/llama-3.1-8b-instruct",
    ]


def test_unconfigured_fallbacks_are_left_out() -> None:
    assert fallback_routes(Settings()) == ()
    assert fallback_routes(Settings(ollama_url="http://x:11434", ollama_model="llama3:latest")) == (
        Route("ollama", "llama3:latest"),
    )


def test_a_models_file_adds_and_overrides_models_with_their_own_chains(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(
        json.dumps(
            [
                {
                    "alias": "jamie",
                    "chain": [{"provider": "runpod", "model": "peteollama:jamie-v2"}, {"provider": "ollama"}],
                    "context_window": 4096,
                    "system_prompt": "You are Jamie v2.",
                },
                {"alias": "tiny", "chain": [{"provider": "vllm", "model": "qwen"}], "fallbacks": True},
            ]
        )
    )
    fallback = (Route("openrouter", "or-model"),)
    registry = ModelRegistry.from_config(local=False, models_file=path, fallbacks=fallback)
    jamie = registry.get("jamie")
    assert jamie.chain == (Route("runpod", "peteollama:jamie-v2"), Route("ollama", "peteollama:jamie-v2"))
    assert (jamie.context_window, jamie.system_prompt) == (4096, "You are Jamie v2.")
    assert registry.get("tiny").chain == (Route("vllm", "qwen"), Route("openrouter", "or-model"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read MODELS_FILE"),
        ('[{"alias": "x"}]', "cannot read MODELS_FILE"),
        ('[{"alias": "x", "chain": []}]', "empty provider chain"),
        ('[{"alias": "x", "chain": [{"provider": "runpod"}]}]', "first route needs a model"),
    ],
)
def test_a_broken_models_file_says_what_is_wrong(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "models.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        ModelRegistry.from_config(local=False, models_file=path)
    assert str(path) in str(info.value)


def test_an_unknown_start_model_is_a_config_error_listing_the_choices() -> None:
    with pytest.raises(ConfigError, match="jamie, property-manager"):
        ModelRegistry.from_config(local=False, default="nope")


def test_unknown_aliases_name_the_registered_ones() -> None:
    registry = ModelRegistry({"a": ModelSpec("a", (Route("p", "m"),))}, "a")
    with pytest.raises(NotFound, match="Registered models: a"):
        registry.get("b")
