"""Runs one worker and takes its whole process group down when the endpoint process dies.

Usage (by the supervisor): `python -I -S _lifeline.py <endpoint pid> -- <worker argv...>`.

An endpoint stopped in order stops its workers itself. One killed outright (SIGKILL, a crashed
test run) cannot, and an orphaned runpod SDK worker re-polls a vanished endpoint with no
backoff, burning a CPU core forever. This shim sits between the two: the kernel sends it
SIGHUP when the endpoint dies (PR_SET_PDEATHSIG on Linux; elsewhere it polls its parent pid),
and it SIGKILLs its process group: the worker, the SDK's heartbeat process and itself. It is
run as a plain script with the standard library only, so it starts in milliseconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from types import FrameType

_PR_SET_PDEATHSIG = 1
_PARENT_POLL_S = 2.0


def _kill_group(_signum: int = 0, _frame: FrameType | None = None) -> None:
    os.killpg(0, signal.SIGKILL)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGHUP)


def main(args: list[str]) -> int:
    if len(args) < 3 or args[1] != "--":
        print("usage: _lifeline.py <endpoint pid> -- <worker argv...>", file=sys.stderr)
        return 2
    endpoint_pid, argv = int(args[0]), args[2:]
    signal.signal(signal.SIGHUP, _kill_group)
    _die_with_parent()
    if os.getppid() != endpoint_pid:  # the endpoint died before we got here
        return 1
    worker = subprocess.Popen(argv)
    # The supervisor signals the whole group; the worker handles SIGTERM/SIGINT itself.
    signal.signal(signal.SIGTERM, lambda _s, _f: None)
    signal.signal(signal.SIGINT, lambda _s, _f: None)
    while True:
        try:
            code = worker.wait(timeout=_PARENT_POLL_S)
            break
        except subprocess.TimeoutExpired:
            if os.getppid() != endpoint_pid:
                _kill_group()
    if code < 0:  # die the way the worker died, so the supervisor sees the same signal
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
