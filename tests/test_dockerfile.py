"""Dockerfile.serverless, checked without a Docker engine: paths, entrypoint, baked models, settings."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path, PurePosixPath

import gpu_handler

from pete_mcp.core.models import PRODUCTION_MODELS

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile.serverless"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
        if not line.rstrip().endswith("\\"):
            logical.append(current)
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context (not --from=)."""
    result = []
    for name, args in instructions():
        if name == "COPY" and "--from=" not in args:
            *sources, destination = shlex.split(args)
            result.append((sources, destination))
    return result


def env() -> dict[str, str]:
    values: dict[str, str] = {}
    for name, args in instructions():
        if name == "ENV":
            values.update(dict(pair.split("=", 1) for pair in shlex.split(args)))
    return values


def run_text() -> str:
    return " ".join(args for name, args in instructions() if name == "RUN")


def context_path(image_path: str) -> Path:
    """The build-context file a path in the image came from, through the COPY instructions."""
    target = PurePosixPath(image_path)
    for sources, destination in copies():
        for source in sources:
            dest = PurePosixPath(destination)
            copied_as = dest / PurePosixPath(source).name if destination.endswith("/") else dest
            if target == copied_as:
                return ROOT / source
            if target.is_relative_to(copied_as):
                return ROOT / source / target.relative_to(copied_as)
    raise AssertionError(f"{image_path} is not copied into the image")


def test_every_copied_path_exists() -> None:
    missing = [s for sources, _ in copies() for s in sources if not (ROOT / s).exists()]
    assert copies() and missing == []


def test_the_entrypoint_script_is_copied_and_executable() -> None:
    [entrypoint] = [json.loads(args) for name, args in instructions() if name == "ENTRYPOINT"]
    script = context_path(entrypoint[0])
    assert script.is_file()
    assert os.access(script, os.X_OK), f"chmod +x {script.relative_to(ROOT)}"
    assert script.read_text().startswith("#!/bin/sh")
    assert "exec python -m gpu_handler" in script.read_text()


def baked() -> list[str]:
    """The BAKED_MODELS build argument's default, split into its entries (`tag` or `tag=Modelfile`)."""
    match = re.search(r'^ARG BAKED_MODELS="([^"]*)"', DOCKERFILE.read_text(), re.MULTILINE)
    assert match is not None, "Dockerfile.serverless declares no BAKED_MODELS build argument"
    return match.group(1).split()


def pulled() -> list[str]:
    return [entry for entry in baked() if "=" not in entry]


def created() -> dict[str, str]:
    """Model tag → its Modelfile's path in the image."""
    return {tag: f"/app/modelfiles/{name}" for tag, name in (entry.split("=", 1) for entry in baked() if "=" in entry)}


def test_the_image_bakes_exactly_the_models_the_registry_routes_to_runpod() -> None:
    routed = {route.model for spec in PRODUCTION_MODELS for route in spec.chain if route.provider == "runpod"}
    assert sorted(pulled() + list(created())) == sorted(routed) == sorted(gpu_handler.BAKED_MODELS)
    assert gpu_handler.JAMIE_MODEL in created()


def test_the_build_reads_the_model_list_from_the_build_argument() -> None:
    assert "for model in $BAKED_MODELS" in run_text()
    assert "ollama pull" in run_text() and "ollama create" in run_text()
    assert not re.search(r"ollama pull [a-z]", run_text()), "pull the models the argument lists, not fixed names"


def test_each_created_model_builds_on_a_pulled_base() -> None:
    for modelfile in created().values():
        text = context_path(modelfile).read_text()
        base = re.search(r"^FROM (\S+)", text, re.MULTILINE)
        assert base is not None and base.group(1) in pulled()
        assert re.search(r"^SYSTEM ", text, re.MULTILINE)


def test_models_are_baked_outside_the_network_volume_and_kept_loaded() -> None:
    values = env()
    assert values["OLLAMA_MODELS"] == "/models"  # a volume at /runpod-volume would hide them
    assert values["OLLAMA_KEEP_ALIVE"] == "-1"
    assert values["WORKER_BACKEND"] == "ollama"
    assert values["WORKER_PRELOAD"] in gpu_handler.BAKED_MODELS


def test_the_base_image_is_ollama_with_a_pinned_version() -> None:
    [(_, base)] = [(n, a) for n, a in instructions() if n == "FROM"]
    default = re.search(r"ARG OLLAMA_VERSION=(\S+)", DOCKERFILE.read_text())
    assert base.startswith("ollama/ollama:")
    assert default is not None and default.group(1) not in {"latest", ""}
