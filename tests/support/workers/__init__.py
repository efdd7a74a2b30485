"""Tiny runpod-SDK worker programs for the local endpoint's tests (run with `python -m`)."""
