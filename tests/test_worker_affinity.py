"""WorkerAffinity: which worker a call's next turn asks for (bounded, expiring)."""

from __future__ import annotations

from pete_mcp.routing import WorkerAffinity


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_calls_worker_is_remembered_until_it_expires() -> None:
    clock = Clock()
    affinity = WorkerAffinity(ttl_s=10, clock=clock)
    affinity.remember("call-1", "w1")
    clock.now = 9.9
    assert affinity.get("call-1") == "w1"
    affinity.remember("call-1", "w2")  # RunPod moved the call: the newest worker wins
    clock.now = 19.8
    assert affinity.get("call-1") == "w2"
    clock.now = 20.0
    assert affinity.get("call-1") is None and len(affinity) == 0


def test_the_oldest_call_is_forgotten_when_full_and_no_call_means_no_affinity() -> None:
    affinity = WorkerAffinity(max_calls=2)
    for call in ("a", "b"):
        affinity.remember(call, f"w-{call}")
    affinity.get("a")  # reading does not refresh: order is by last answer
    affinity.remember("c", "w-c")
    assert (affinity.get("a"), affinity.get("b"), affinity.get("c")) == (None, "w-b", "w-c")
    affinity.remember(None, "w-x")
    affinity.remember("d", None)
    assert affinity.get(None) is None and affinity.get("d") is None
