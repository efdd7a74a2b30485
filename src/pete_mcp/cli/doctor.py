"""`pete doctor`: the running gateway's own health checks when one answers, else a fresh core's.

Through the gateway the operator sees the live state (its active model, its providers' breakers,
its store), not what a core built a moment ago would say. `--probe` is passed through as
`?probe=1` (the billed one-token prompt, run by the gateway); it signs in as `pete prompt` does.
"""

from __future__ import annotations

import sys
from typing import TextIO

import anyio

from pete_mcp.core import Settings
from pete_mcp.ops.doctor import checks_in_process, exit_status, format_report, report_from_wire

from ._gateway import error_message, find_gateway, say_path

__all__ = ["run_doctor"]

GATEWAY_CHECKS_TIMEOUT_S = 60.0  # the gateway's checks run under their own deadlines (the probe's is 20 s)


async def _doctor(settings: Settings, probe: bool) -> tuple[str, int]:
    async with find_gateway(settings) as gateway:
        say_path(
            settings,
            gateway,
            through="its live checks" + (", probe included" if probe else ""),
            in_process="checking a core built in-process",
        )
        if gateway is not None:
            response = await gateway.http.get(
                f"{gateway.url}/api/health",
                params={"probe": "1"} if probe else None,
                headers=gateway.headers(),
                timeout=GATEWAY_CHECKS_TIMEOUT_S,
            )
            if response.status_code != 200:
                hint = (
                    "\nSet MCP_TOKEN to the gateway's token (or run pete doctor as the user that runs it)."
                    if response.status_code in (401, 403)
                    else ""
                )
                return f"error: the gateway answered {response.status_code}: {error_message(response)}{hint}", 1
            report = report_from_wire(response.json())
            return format_report(report), exit_status(report)
    report = await checks_in_process(settings, probe)
    return format_report(report), exit_status(report)


def run_doctor(settings: Settings, *, probe: bool = False, out: TextIO | None = None) -> int:
    text, status = anyio.run(_doctor, settings, probe)
    print(text, file=out or (sys.stderr if text.startswith("error:") else sys.stdout))
    return status
