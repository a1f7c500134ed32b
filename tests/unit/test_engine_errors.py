"""The engine adapter translates every failure of the SDK into our errors, also when the
engine goes away in the middle of a stop, kill or remove (an engine restart)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import requests

from orchestrator.engine import DockerEngine
from orchestrator.engine.errors import EngineUnavailableError


class GoneApi:
    """An API client whose engine has just gone away."""

    api_version = "1.41"

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            raise requests.exceptions.ConnectionError("Connection aborted.")

        return call


@pytest.mark.parametrize("verb", ["stop", "kill", "remove"])
def test_an_engine_gone_mid_call_is_engine_unavailable(verb: str) -> None:
    engine = DockerEngine(SimpleNamespace(api=GoneApi()))
    with pytest.raises(EngineUnavailableError, match="the engine did not answer"):
        getattr(engine, verb)("abc123")


def test_the_private_docker_calls_the_log_reader_relies_on_exist() -> None:
    """The adapter reads logs in large blocks through these (see DockerEngine.logs); the
    docker dependency is pinned to the versions where they exist and behave so."""
    import inspect

    from docker import APIClient

    for name in ("_url", "_get", "_raise_for_status"):
        assert callable(getattr(APIClient, name, None)), name
    assert list(inspect.signature(APIClient._url).parameters)[:2] == ["self", "pathfmt"]
    assert "stream" in inspect.signature(APIClient._get).parameters or "kwargs" in str(
        inspect.signature(APIClient._get)
    )
