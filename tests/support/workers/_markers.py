"""Marker files a test worker leaves so tests can see inside the worker process.

`<ECHO_MARKER_DIR>/<job id>.<event>` holds the worker's pid and id; events are `started`,
`cancelled` (the handler saw CancelledError, or GeneratorExit when stopped at a yield) and `finished`.
"""

from __future__ import annotations

import os
from pathlib import Path


def mark(job_id: str, event: str) -> None:
    directory = os.environ.get("ECHO_MARKER_DIR")
    if directory:
        text = f"{os.getpid()} {os.environ.get('RUNPOD_POD_ID', '?')}\n"
        (Path(directory) / f"{job_id}.{event}").write_text(text)
