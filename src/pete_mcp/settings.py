"""Pete's configuration: the only module that reads the environment (and `.env`).

Every field is documented in `docs/configuration.md`; a test checks that. Secrets are
`SecretStr`, so they never print in logs, errors or the dashboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LOOPBACK_HOSTS", "Settings"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Settings(BaseSettings):
    """All of Pete's settings. Environment variables are the field names in upper case."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- where Pete listens and keeps its state
    host: str = Field("127.0.0.1", description="Address `pete serve` binds to.")
    port: int = Field(8765, description="Port `pete serve` binds to (0 picks a free one).")
    public_url: str | None = Field(None, description="URL Pete is reached at from outside (VAPI, MCP hosts).")
    data_dir: Path = Field(Path(".pete"), description="Directory for the SQLite store and local-stack files.")
    log_level: str = Field("INFO", description="Python logging level.")

    # --- RunPod
    runpod_api_key: SecretStr | None = Field(None, description="RunPod API key; unset → local endpoint.")
    runpod_endpoint_id: str | None = Field(None, description="RunPod serverless endpoint id.")
    runpod_base_url: str = Field("https://api.runpod.ai/v2", description="RunPod public endpoint API base.")
    runpod_rest_url: str = Field("https://api.runpod.io/v2", description="RunPod management REST v2 base (deploys).")
    runpod_use_openai_route: bool = Field(
        True, description="Stream through the endpoint's OpenAI route (lowest TTFT) instead of /stream."
    )
    runpod_timeout_s: float = Field(30.0, description="Default deadline for one RunPod call, in seconds.")

    # --- the local stack (`pete up` without RunPod credentials)
    local_endpoint_id: str = Field("local", description="Endpoint id the local RunPod endpoint serves.")
    local_api_key: SecretStr = Field(SecretStr("local-dev-key"), description="API key of the local endpoint.")
    local_endpoint_port: int = Field(8780, description="Port of the local RunPod endpoint.")
    local_min_workers: int = Field(1, description="Workers the local endpoint keeps running.")
    local_max_workers: int = Field(2, description="Most workers the local endpoint starts.")
    local_idle_timeout_s: float = Field(60.0, description="Idle seconds before a local worker above min stops.")
    local_cold_start_s: float = Field(0.0, description="Simulated cold-start delay for each new local worker.")
    model_server_port: int = Field(8781, description="Port of the local llama.cpp model server.")
    model_server_threads: int = Field(2, description="CPU threads of the local model server.")

    # --- the worker (gpu_handler), read inside the worker process
    worker_backend: Literal["openai", "ollama"] = Field(
        "openai", description="Model-server API the worker speaks: OpenAI /v1 or Ollama native /api."
    )
    worker_model_url: str = Field("http://127.0.0.1:8781", description="Base URL of the worker's model server.")
    worker_concurrency: int = Field(4, description="Jobs one worker runs at once (concurrency_modifier).")
    worker_preload: str = Field("", description="Comma-separated models the worker loads before taking jobs.")
    worker_ready_timeout_s: float = Field(300.0, description="How long the worker waits for its model server.")
    worker_chunk_chars: int = Field(48, description="Characters batched per streamed chunk (sentence-sized).")
    worker_chunk_max_delay_s: float = Field(0.08, description="Longest a streamed chunk is held back.")
    worker_keep_alive: str = Field(
        "-1", description="Ollama keep_alive sent with every request (-1 = keep the model loaded forever)."
    )
    worker_read_timeout_s: float = Field(
        300.0, description="Longest the worker waits for the model server's next byte (covers model loads)."
    )
    runpod_pod_id: str | None = Field(
        None, description="Worker id RunPod gives each worker (RUNPOD_POD_ID); reported in job results."
    )

    # --- models
    active_model: str = Field("", description="Alias of the model to start on; empty → first registry entry.")
    models_file: Path | None = Field(None, description="JSON file of extra or overriding model definitions.")

    # --- fallback providers
    openrouter_api_key: SecretStr | None = Field(None, description="OpenRouter key for the fallback provider.")
    openrouter_base_url: str = Field("https://openrouter.ai/api/v1", description="OpenRouter API base.")
    openrouter_model: str = Field("meta-llama/llama-3.1-8b-instruct", description="Fallback model name.")
    ollama_url: str | None = Field(None, description="Direct Ollama server used as a fallback provider.")
    hedge_after_s: float | None = Field(
        None, description="Start the next provider if no first token by then; unset → from recent p95."
    )
    hedging: bool = Field(True, description="Race the next provider when the first token is late.")

    # --- auth for the faces
    mcp_token: SecretStr | None = Field(None, description="Bearer token for /mcp and the dashboard's actions.")
    allowed_hosts: str = Field("", description="Extra host names accepted by /mcp (DNS-rebinding protection).")
    vapi_auth: Literal["none", "bearer", "hmac", "secret"] = Field(
        "none", description="How VAPI requests are authenticated."
    )
    vapi_secret: SecretStr | None = Field(None, description="VAPI bearer token, HMAC key or X-Vapi-Secret.")
    vapi_hmac_skew_s: float = Field(300.0, description="Largest accepted clock skew of a VAPI HMAC timestamp.")
    on_call_number: str = Field("+15550100999", description="On-call number emergencies transfer to.")
    office_number: str = Field("+15550100100", description="Office number for ordinary transfers.")

    # --- alerts
    slack_webhook_url: SecretStr | None = Field(None, description="Slack incoming-webhook URL for alerts.")
    github_token: SecretStr | None = Field(None, description="GitHub token that may open issues on the repo.")
    github_repo: str | None = Field(None, description="owner/name of the repository alerts open issues on.")
    github_api_url: str = Field("https://api.github.com", description="GitHub REST API base.")
    ttft_budget_s: float = Field(0.8, description="p95 time-to-first-token budget the alert rule watches.")
    error_rate_threshold: float = Field(0.2, description="Error-rate share that raises an alert.")

    @property
    def uses_real_runpod(self) -> bool:
        return self.runpod_api_key is not None and bool(self.runpod_endpoint_id)

    @property
    def binds_beyond_loopback(self) -> bool:
        return self.host not in LOOPBACK_HOSTS
