"""`pete eval` on the two embedded models (llama.cpp, CPU): a handful of cases, side by side.

Slow (real model server); the full side-by-side run and its table are in docs/evals.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from pete_mcp.core import ModelProvider, Settings
from pete_mcp.evals import EvalOptions, load_suite, render_table, run_evals
from pete_mcp.evals.runner import LOCAL_PROVIDER, local_registry
from pete_mcp.routing import OpenAICompatibleProvider

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
SUITES = Path(__file__).resolve().parents[1] / "evals" / "tenant_calls"


async def test_smollm2_and_gemma3_run_side_by_side_through_the_vapi_face(model_server: Any, tmp_path: Path) -> None:
    url = model_server.url + "/v1"

    def providers(http: httpx.AsyncClient) -> Mapping[str, ModelProvider]:
        return {LOCAL_PROVIDER: OpenAICompatibleProvider(LOCAL_PROVIDER, http, base_url=url, first_token_timeout_s=300)}

    options = EvalOptions(
        models=["smollm2", "gemma3"],
        suites=[load_suite(SUITES)],
        case_ids=["emerg-gas-smell", "rent-due-date"],
        max_tokens=32,
        log_dir=tmp_path / "logs",
    )
    settings = Settings.model_validate({"data_dir": tmp_path})
    smollm2, gemma3 = await run_evals(settings, options, engine=(local_registry(), providers))
    for result in (smollm2, gemma3):
        gas = next(c for c in result.cases if c.case_id == "emerg-gas-smell")
        assert gas.checks == {"transfer": True, "emergency_paged": True}, "the emergency layer answers, not the model"
        rent = next(c for c in result.cases if c.case_id == "rent-due-date")
        assert "jamie:" in rent.transcript and set(rent.checks) >= {"answered", "no_ticket", "fits_speech"}
    table = render_table([smollm2, gemma3])
    assert table.splitlines()[0].split()[-2:] == ["smollm2", "gemma3"]
