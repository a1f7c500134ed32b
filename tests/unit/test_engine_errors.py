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
