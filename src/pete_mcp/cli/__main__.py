"""`python -m pete_mcp.cli` runs `pete` (tests start `pete up` this way)."""

from . import main

main()
