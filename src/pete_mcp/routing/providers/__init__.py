"""One module per model backend, each implementing `pete_mcp.core.ModelProvider`."""
