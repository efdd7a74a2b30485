"""Documentation that must stay true: every setting is documented, every CLI command too."""

from pathlib import Path

from click.testing import CliRunner
from gpu_handler.config import WorkerSettings

from pete_mcp.cli.main import main
from pete_mcp.core.settings import Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


FIELDS = {**WorkerSettings.model_fields, **Settings.model_fields}


def test_every_setting_is_documented_in_configuration_md() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [name.upper() for name in FIELDS if f"`{name.upper()}`" not in text]
    assert missing == []


def test_every_setting_has_a_description() -> None:
    assert [n for n, f in FIELDS.items() if not f.description] == []


def test_every_cli_command_is_in_the_cli_reference() -> None:
    text = (DOCS / "cli.md").read_text()
    assert [c for c in main.commands if f"pete {c}" not in text] == []


def test_cli_help_lists_the_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("up", "serve", "worker", "doctor", "bench", "prompt", "localpod"):
        assert command in result.output
