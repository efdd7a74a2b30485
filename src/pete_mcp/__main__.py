"""`python -m pete_mcp` runs the `pete` command line."""

from pete_mcp.cli import main

main()
