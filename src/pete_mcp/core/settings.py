"""Pete's configuration: the only module that reads the environment (and `.env`).

Every field is documented in `docs/configuration.md`; a test checks that. Secrets are
`SecretStr`, so they never print in logs, errors or the dashboard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["LOOPBACK_HOSTS", "Settings"]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Settings(BaseSettings):
    """All of Pete's settings. Environment variables are the field names in upper case."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # --- where Pete listens and keeps its state
    host: str = Field(default="127.0.0.1", description="Address `pete serve` binds to.")
    port: int = Field(default=8765, description="Port `pete serve` binds to (0 picks a free one).")
    public_url: str | None = Field(default=None, description="URL Pete is reached at from outside (VAPI, MCP hosts).")
    data_dir: Path = Field(
        default=Path(".pete"),
        description="Directory for the SQLite store (when DATABASE_URL is unset) and local-stack files.",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")

    # --- RunPod
    runpod_api_key: SecretStr | None = Field(default=None, description="RunPod API key; unset → local endpoint.")
    runpod_endpoint_id: str | None = Field(default=None, description="RunPod serverless endpoint id.")
    runpod_base_url: str = Field(default="https://api.runpod.ai/v2", description="RunPod public endpoint API base.")
    runpod_rest_url: str = Field(
        default="https://api.runpod.io/v2", description="RunPod management REST v2 base (deploys)."
    )
    runpod_use_openai_route: bool = Field(
        default=True, description="Stream through the endpoint's OpenAI route (lowest TTFT) instead of /stream."
    )
    runpod_timeout_s: float = Field(default=30.0, description="Default deadline for one RunPod call, in seconds.")

    # --- the local stack (`pete up` without RunPod credentials)
    local_endpoint_id: str = Field(default="local", description="Endpoint id the local RunPod endpoint serves.")
    local_api_key: SecretStr = Field(default=SecretStr("local-dev-key"), description="API key of the local endpoint.")
    local_endpoint_port: int = Field(default=8780, description="Port of the local RunPod endpoint.")
    local_min_workers: int = Field(default=1, description="Workers the local endpoint keeps running.")
    local_max_workers: int = Field(default=2, description="Most workers the local endpoint starts.")
    local_idle_timeout_s: float = Field(default=60.0, description="Idle seconds before a local worker above min stops.")
    local_cold_start_s: float = Field(default=0.0, description="Simulated cold-start delay for each new local worker.")
    local_queue_delay_s: float = Field(
        default=4.0, description="Seconds a job waits in the local queue before another worker is started."
    )
    local_worker_command: str = Field(
        default="", description="Command line of a local worker process; empty → `python -m gpu_handler`."
    )
    model_server_port: int = Field(default=8781, description="Port of the local llama.cpp model server.")
    model_server_threads: int = Field(default=2, description="CPU threads of the local model server.")

    # --- waiting on the local stack (the worker's own settings are gpu_handler.config.WorkerSettings)
    worker_ready_timeout_s: float = Field(
        default=300.0, description="How long the worker (and `pete up`) waits for the model server to answer."
    )

    # --- models
    active_model: str = Field(default="", description="Alias of the model to start on; empty → first registry entry.")
    models_file: Path | None = Field(default=None, description="JSON file of extra or overriding model definitions.")

    # --- fallback providers
    openrouter_api_key: SecretStr | None = Field(default=None, description="OpenRouter key for the fallback provider.")
    openrouter_base_url: str = Field(default="https://openrouter.ai/api/v1", description="OpenRouter API base.")
    openrouter_model: str = Field(default="meta-llama/llama-3.1-8b-instruct", description="Fallback model name.")
    ollama_url: str | None = Field(default=None, description="Direct Ollama server used as a fallback provider.")
    hedge_after_s: float | None = Field(
        default=None, description="Start the next provider if no first token by then; unset → from recent p95."
    )
    hedging: bool = Field(default=True, description="Race the next provider when the first token is late.")
    fallbacks: str = Field(
        default="openrouter,ollama",
        description="Fallback providers appended to each built-in model's chain, in order (configured ones only).",
    )
    openrouter_referer: str | None = Field(
        default=None, description="HTTP-Referer sent to OpenRouter (app attribution)."
    )
    openrouter_title: str = Field(default="Pete", description="X-Title sent to OpenRouter (app attribution).")
    ollama_model: str = Field(
        default="", description="Model tag the direct Ollama fallback serves; empty → the RunPod tag."
    )
    hedge_floor_s: float = Field(
        default=0.3, description="Shortest hedge delay when it is derived from the recent p95 TTFT."
    )
    hedge_ceiling_s: float = Field(
        default=1.0, description="Longest hedge delay when it is derived from the recent p95 TTFT."
    )
    hedge_budget: float = Field(
        default=0.2,
        description="Hedges earned per request (token bucket): extra requests stay under this share plus burst.",
    )
    hedge_burst: float = Field(default=5.0, description="Hedges that may be saved up for a burst of slow first tokens.")
    breaker_failures: int = Field(default=5, description="Consecutive failures that open a provider's circuit breaker.")
    breaker_error_rate: float = Field(
        default=0.5, description="Failure share in the breaker window that opens the breaker."
    )
    breaker_min_requests: int = Field(
        default=10, description="Outcomes needed in the window before the error rate counts."
    )
    breaker_window_s: float = Field(default=60.0, description="Window of the circuit breaker's error rate, in seconds.")
    breaker_cooldown_s: float = Field(
        default=15.0, description="Seconds an open breaker waits before a half-open probe."
    )
    switch_budget_s: float = Field(
        default=120.0, description="Longest a model switch may spend warming up and test-asking the new model."
    )

    # --- keep-warm (RunPod workers kept warm on a schedule)
    keepwarm_hours: str = Field(
        default="",
        description="When to keep RunPod workers warm, e.g. `mon-fri 08:00-18:00` (local time); empty → off.",
    )
    keepwarm_workers: int = Field(default=1, description="Workers the keep-warm schedule keeps warm.")
    keepwarm_gpu: str = Field(default="L4", description="GPU the endpoint runs on, for the keep-warm cost estimate.")
    keepwarm_interval_s: float = Field(
        default=4.0,
        description="Seconds between keep-warm pings; keep it below the endpoint's idle timeout (5 s default).",
    )

    # --- auth for the faces
    mcp_token: SecretStr | None = Field(default=None, description="Bearer token for /mcp and the dashboard's actions.")
    allowed_hosts: str = Field(default="", description="Extra host names accepted by /mcp (DNS-rebinding protection).")
    vapi_auth: Literal["none", "bearer", "hmac", "secret"] = Field(
        default="none", description="How VAPI requests are authenticated."
    )
    vapi_secret: SecretStr | None = Field(default=None, description="VAPI bearer token, HMAC key or X-Vapi-Secret.")
    vapi_hmac_skew_s: float = Field(default=300.0, description="Largest accepted clock skew of a VAPI HMAC timestamp.")
    vapi_llm_secret: SecretStr | None = Field(
        default=None,
        description="Key VAPI sends to the Custom LLM route (Authorization or X-Vapi-Secret); unset: VAPI_SECRET.",
    )
    on_call_number: str = Field(default="+15550100999", description="On-call number emergencies transfer to.")
    office_number: str = Field(default="+15550100100", description="Office number for ordinary transfers.")

    # --- the VAPI face's turn budget (see docs/vapi.md)
    vapi_holding_after_s: float = Field(
        default=1.2, description="Speak the holding phrase when the model's first token is this many seconds late."
    )
    vapi_answer_deadline_s: float = Field(
        default=8.0,
        description="Seconds without an answer before Jamie apologises and ends the turn (keep well below 20).",
    )
    vapi_holding_phrase: str = Field(
        default="One moment while I check that.", description="What Jamie says while a slow model starts up."
    )
    vapi_apology: str = Field(
        default=(
            "I'm sorry, I'm having trouble answering right now. Someone from our office will call you back shortly."
        ),
        description="What Jamie says when no answer can come in time (a callback is recorded).",
    )
    vapi_tool_frame: Literal["tool_calls", "function_call"] = Field(
        default="tool_calls",
        description="How transferCall/endCall reach VAPI: tool_calls deltas or legacy function_call.",
    )
    vapi_text_frames: Literal["chunk-plan", "every-delta"] = Field(
        default="chunk-plan",
        description=(
            "How reply text is framed for VAPI: chunk-plan sends the first delta at once, then the text up to"
            " each punctuation mark where VAPI's voice.chunkPlan may cut it (the same audio in a few frames);"
            " every-delta sends a frame per model delta (for assistants with chunkPlan disabled)."
        ),
    )

    # --- alerts
    slack_webhook_url: SecretStr | None = Field(default=None, description="Slack incoming-webhook URL for alerts.")
    github_token: SecretStr | None = Field(default=None, description="GitHub token that may open issues on the repo.")
    github_repo: str | None = Field(default=None, description="owner/name of the repository alerts open issues on.")
    github_api_url: str = Field(default="https://api.github.com", description="GitHub REST API base.")
    ttft_budget_s: float = Field(default=0.8, description="p95 time-to-first-token budget the alert rule watches.")
    error_rate_threshold: float = Field(default=0.2, description="Error-rate share that raises an alert.")
    github_alert_labels: str = Field(
        default="pete-alert",
        description="Comma-separated labels of alert issues; the first one finds open alert issues.",
    )
    alert_eval_interval_s: float = Field(default=5.0, description="Seconds between evaluations of the alert rules.")
    alert_ttft_window_s: float = Field(
        default=300.0, description="Window whose p95 time to first token is compared with TTFT_BUDGET_S."
    )
    alert_error_window_s: float = Field(
        default=300.0, description="Window whose error rate is compared with ERROR_RATE_THRESHOLD."
    )
    alert_min_requests: int = Field(
        default=5, description="Fewest requests in a window before TTFT and error-rate rules judge it."
    )
    alert_down_for_s: float = Field(
        default=30.0, description="How long the RunPod health check must keep failing before 'endpoint down' fires."
    )
    alert_queue_stall_s: float = Field(
        default=60.0,
        description="How long jobs may queue with no idle, ready or running worker before the alert fires.",
    )
    alert_repeat_s: float = Field(
        default=3600.0,
        description="While an alert keeps firing, how often it is repeated (GitHub comment, Slack message).",
    )

    # --- metrics
    metrics_poll_interval_s: float = Field(
        default=15.0,
        description="Seconds between provider health polls (RunPod /health submits no job, so no GPU wakes).",
    )
    metrics_flush_interval_s: float = Field(
        default=30.0,
        description="Seconds between writes of the per-minute metric rollups to the store (and at shutdown).",
    )

    # --- paging the on-call (emergencies)
    pager_webhook_url: str | None = Field(
        default=None,
        description="Paging webhook for emergencies: PagerDuty Events v2 enqueue URL, Twilio Messages.json URL, "
        "or any endpoint taking signed JSON.",
    )
    pager_webhook_secret: SecretStr | None = Field(
        default=None,
        description="PagerDuty routing key, Twilio auth token, or the HMAC key of X-Pete-Signature (json).",
    )
    pager_webhook_format: Literal["json", "pagerduty", "twilio"] = Field(
        default="json", description="Body shape of the paging webhook: json (signed), pagerduty or twilio."
    )
    pager_webhook_username: str | None = Field(
        default=None, description="Twilio Account SID for basic auth; default: the AC… id in PAGER_WEBHOOK_URL."
    )
    pager_sms_from: str = Field(default="", description="Twilio sender number (From) of emergency pages.")
    pager_sms_to: str = Field(
        default="", description="Comma-separated numbers Twilio pages go to; empty → ON_CALL_NUMBER."
    )
    pager_wait_s: float = Field(
        default=1.5,
        description="Longest Jamie waits for a sink to accept a page before speaking (the transfer never waits).",
    )
    pager_retries: int = Field(default=3, description="Retries of a page refused with 5xx/429 or not delivered.")
    pager_backoff_s: float = Field(default=0.5, description="First wait between page retries; doubles each time.")

    # --- cold-start-aware routing (issue 14)
    runpod_health_poll_s: float = Field(
        default=2.0,
        description="Seconds between RunPod /health polls while calls are active (free: no job); the router "
        "hedges at once when no worker is idle and skips a cold endpoint for a warm fallback.",
    )
    runpod_worker_concurrency: int = Field(
        default=4,
        ge=1,
        description="Jobs one worker of the RunPod endpoint runs at once (the worker's WORKER_CONCURRENCY): with "
        "no idle worker, the router hedges at once only when the running workers' slots are full or jobs queue.",
    )
    first_token_timeout_s: float | None = Field(
        default=10.0,
        description="Seconds without a first token after which an attempt is given up for the next provider "
        "(only when there is one); empty = off.",
    )
    stall_timeout_s: float | None = Field(
        default=4.0,
        description="Seconds without new text after the first token after which the next provider continues "
        "the reply from what was already sent; empty = off.",
    )
    # --- load-balancing endpoints (issue 14)
    runpod_endpoint_type: Literal["queue", "load_balancer"] = Field(
        default="queue",
        description="RunPod endpoint type: `queue` (/run, /stream, the OpenAI route) or `load_balancer` "
        "(direct HTTP to a worker, no queue hop; the local endpoint runs as one too).",
    )
    runpod_lb_url: str = Field(
        default="",
        description="Base URL of the load-balancing endpoint; empty → https://{RUNPOD_ENDPOINT_ID}.api.runpod.ai "
        "(real) or the local endpoint's /lb/{LOCAL_ENDPOINT_ID}.",
    )
    runpod_affinity_ttl_s: float = Field(
        default=900.0,
        description="Seconds a call's worker (X-Runpod-Worker-Id) is remembered and asked for again on its "
        "next turns, so they reuse that worker's prompt cache (load-balancing endpoints).",
    )

    # --- storage and replicas (docs/scaling.md)
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user:pass@host:5432/db) shared by gateway replicas; unset → SQLite.",
    )
    database_pool_min: int = Field(default=2, description="PostgreSQL connections each replica keeps open.")
    database_pool_max: int = Field(default=10, description="Most PostgreSQL connections one replica opens.")
    database_timeout_s: float = Field(
        default=5.0, description="Seconds to wait for PostgreSQL at start and for a free pooled connection."
    )
    replica_id: str = Field(
        default="", description="This replica's name in fleet metrics; empty → hostname:port (keep it stable)."
    )
    store_spool_limit: int = Field(
        default=10000, description="Writes kept in memory while the database is unreachable; beyond it, lost."
    )

    # --- hostile input (see docs/reliability.md)
    body_limit_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body on /mcp, /api/* and the dashboard, in bytes; larger gets 413.",
    )
    vapi_body_limit_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description="Largest request body on /vapi/* (VAPI resends the whole conversation), in bytes; larger gets 413.",
    )

    # --- operator view (issue 16)
    pete_url: str | None = Field(
        default=None,
        description="The running gateway CLI commands go through (pete prompt, pete eval's model calls, "
        "pete doctor's checks; default http://127.0.0.1:PORT); when none answers there, they build a core in-process.",
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP collector base URL (e.g. http://127.0.0.1:4318) for GenAI metrics and traces; "
        "needs the `otlp` extra. Off when unset.",
    )
    otel_service_name: str = Field(default="pete", description="OpenTelemetry `service.name` of the gateway.")

    # --- sign-in (OAuth 2.1; see docs/mcp.md "Sign-in")
    oauth_server: bool | None = Field(
        default=None,
        description="Run the built-in OAuth server; unset → on when PUBLIC_URL is set and OAUTH_ISSUER is not.",
    )
    oauth_access_token_ttl_s: int = Field(
        default=900, description="Lifetime of an access token the built-in server issues."
    )
    oauth_refresh_token_ttl_s: int = Field(
        default=30 * 86400, description="Lifetime of a refresh token (each use rotates it)."
    )
    oauth_issuer: str | None = Field(
        default=None, description="Issuer URL of an external identity provider whose JWT access tokens /mcp accepts."
    )
    oauth_jwks_url: str | None = Field(
        default=None, description="JWKS URL of the external identity provider; unset → its OpenID discovery document."
    )
    oauth_audience: str | None = Field(
        default=None, description="Audience an external JWT must carry; unset → Pete's /mcp URL."
    )
    oauth_cimd: bool = Field(default=True, description="Accept Client ID Metadata Documents (a URL as client_id).")
    oauth_cimd_allowed_hosts: str = Field(
        default="", description="Comma-separated hosts client metadata may come from; empty → any public host."
    )
    oauth_cimd_max_bytes: int = Field(default=5120, description="Largest client metadata document fetched.")
    oauth_cimd_timeout_s: float = Field(default=5.0, description="Longest a client metadata fetch may take.")
    oauth_cimd_cache_s: float = Field(
        default=3600.0, description="How long a fetched client metadata document is kept."
    )
    oauth_cimd_allow_loopback: bool = Field(
        default=False, description="Tests only: fetch client metadata from 127.0.0.1/::1, over http too."
    )
    oauth_signin_max_failures: int = Field(
        default=5, description="Failed sign-ins per account (4x per address) before sign-in is locked for the window."
    )
    oauth_signin_window_s: float = Field(default=900.0, description="Window of the sign-in rate limit, in seconds.")

    # --- evals, quality gates, training data (docs/evals.md)
    eval_min_score: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Lowest latest `pete eval` score (0-1) a model needs before switch_model or deploy; unset → off.",
    )
    eval_require_run: bool = Field(
        default=False, description="With EVAL_MIN_SCORE: also refuse a model that has no saved eval run."
    )
    eval_gate_suite: str = Field(
        default="", description="Suite whose latest score the gate reads (e.g. tenant_calls); empty → the newest run."
    )
    eval_deploy_models: str = Field(
        default="", description="Comma-separated aliases whose scores gate a deploy; empty → the active model."
    )

    # --- GitHub → deploy (docs/github-deploy.md)
    github_webhook_secret: SecretStr | None = Field(
        default=None, description="Secret of the GitHub webhook (X-Hub-Signature-256); unset → /github/webhook is off."
    )
    github_deploy_workflows: str = Field(
        default="", description="Comma-separated workflow names whose successful workflow_run deploys; empty → none."
    )
    github_deploy_on_release: bool = Field(default=True, description="Deploy the tag of a published GitHub release.")
    deploy_image_template: str = Field(
        default="", description="Worker image for a GitHub tag, e.g. ghcr.io/acme/pete-worker:{tag}; empty → no deploy."
    )
    github_deploy_environment: str = Field(
        default="production", description="Environment name of the GitHub deployments Pete reports."
    )
    github_deploy_follow_s: float = Field(
        default=900.0, description="How long a webhook deploy follows the rollout before reporting it unfinished."
    )
    hedge_rescue_multiple: float | None = Field(
        default=2.0,
        description="A reply with no first token after this many times the route's recent p95 TTFT (unclamped) "
        "is hedged even when the hedge budget is spent (a rescue); empty = the budget always decides.",
    )

    @property
    def uses_real_runpod(self) -> bool:
        return self.runpod_api_key is not None and bool(self.runpod_endpoint_id)

    @property
    def replica_name(self) -> str:
        """`replica_id`, or hostname:port."""
        import socket

        return self.replica_id or f"{socket.gethostname()}:{self.port}"

    @property
    def named_hosts(self) -> tuple[str, ...]:
        """Host names Pete was told it is reached by: `ALLOWED_HOSTS`, then the host of `PUBLIC_URL` (lower case)."""
        names = [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]
        if self.public_url:
            host = urlsplit(self.public_url.strip()).hostname
            if host:
                names.append(f"[{host}]" if ":" in host else host)
        return tuple(dict.fromkeys(names))

    @property
    def exposure(self) -> list[str]:
        """Why a face may be reachable beyond loopback (empty when it is not): the bind, a public URL or host."""
        reasons = []
        if self.host not in LOOPBACK_HOSTS:
            reasons.append(f"HOST={self.host}")
        if self.public_url:
            reasons.append("PUBLIC_URL is set (a tunnel or proxy reaches this process)")
        allowed = [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]
        public = [h for h in allowed if h.strip("[]") not in LOOPBACK_HOSTS]
        if public:
            reasons.append(f"ALLOWED_HOSTS names {', '.join(public)}")
        return reasons

    @property
    def binds_beyond_loopback(self) -> bool:
        """True when a face may be reached from beyond this machine (see `exposure`)."""
        return bool(self.exposure)
