"""`serve --http` refuses what it cannot serve safely, before it starts anything: one
line, exit 2, no token ever printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli

# A refusal that regressed would start the service for real: fail instead of waiting.
pytestmark = pytest.mark.timeout(30)

SECRET = "s3cr3t-" + "9" * 20


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(f"sqlite:///{tmp_path / 'never.db'}")


def refused(cli: Cli, *args: str, env: dict[str, str] | None = None) -> str:
    cli.env = env or {}
    result = cli("serve", *args, expect=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output and SECRET not in result.output
    return lines[0]


def test_an_api_beyond_loopback_needs_a_token(cli: Cli, tmp_path: Path) -> None:
    line = refused(cli, "--http", "0.0.0.0:8080")
    assert "needs a token" in line and "ORCHESTRATOR_API_TOKEN" in line
    assert not (tmp_path / "never.db").exists()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("8080", "is not HOST:PORT"),
        ("127.0.0.1:http", "is not HOST:PORT"),
        ("127.0.0.1:70000", "is not HOST:PORT"),
        ("example.com:80", "is not an IP address"),
        (":8080", "is not HOST:PORT"),
    ],
)
def test_a_bad_listen_address_is_named(cli: Cli, value: str, says: str) -> None:
    assert says in refused(cli, "--http", value)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (f"alice {SECRET}\n", ":1: expected name:token[:read]"),
        (f"alice:{SECRET}:admin\n", ":1: the third field is 'read' or 'write'"),
        ("# ok\n\nalice:short\n", ":3: a token needs at least 16 characters"),
        (f"al ice:{SECRET}\n", ":1: 'al ice' is not a token name"),
        (f"alice:{SECRET}\nalice:{SECRET}x\n", "the name 'alice' is given twice"),
        (f"alice:{SECRET}\nbob:{SECRET}:read\n", "two names share one token"),
    ],
)
def test_a_bad_tokens_file_is_named_by_line_without_its_secret(
    cli: Cli, tmp_path: Path, content: str, says: str
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(content)
    line = refused(cli, "--http", "127.0.0.1:0", "--api-tokens-file", str(tokens))
    assert says in line


def test_a_short_env_token_and_a_missing_tokens_file(cli: Cli, tmp_path: Path) -> None:
    line = refused(cli, "--http", "0.0.0.0:8080", env={"ORCHESTRATOR_API_TOKEN": "short"})
    assert "at least 16 characters" in line
    line = refused(cli, "--http", "127.0.0.1:0", "--api-tokens-file", str(tmp_path / "none"))
    assert "cannot read" in line


@pytest.mark.parametrize("value", ["evil example", "*.", "a..b", "https://x.org"])
def test_an_allowed_host_that_is_no_name_is_refused(cli: Cli, value: str) -> None:
    line = refused(cli, "--http", "127.0.0.1:0", "--http-allowed-hosts", f"ok.example,{value}")
    assert line.startswith("ORCHESTRATOR_HTTP_ALLOWED_HOSTS: ") and "is not a host name" in line
