"""Docker SDK errors translated into ours, with a one-line reason.

Callers of the adapter never see `docker.errors` or `requests` exceptions: an answer of
the engine becomes an EngineError, an engine that did not answer EngineUnavailableError.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import requests
from docker.errors import APIError, DockerException

from orchestrator.errors import EngineError, EngineUnavailableError


def _reason(error: BaseException) -> str:
    if isinstance(error, APIError):
        refused = _refused_by_proxy(error)
        if refused:
            return refused
        explanation = error.explanation
        if isinstance(explanation, bytes):
            explanation = explanation.decode("utf-8", "replace")
        return str(explanation or error).strip()
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _refused_by_proxy(error: APIError) -> str | None:
    """A 403 that is not the engine's own JSON answer: something between us and the
    engine (a socket proxy) does not allow this call. Say which call, in one line."""
    response = error.response
    if response is None or response.status_code != 403:
        return None
    if "json" in (response.headers.get("Content-Type") or ""):
        return None
    request = response.request
    path = re.sub(r"^/v[\d.]+", "", urlsplit(request.url or "").path) if request else "?"
    method = request.method if request else "?"
    return (
        f"{method} {path} was refused (403) before it reached the engine: a socket proxy "
        "between this service and the engine does not allow it"
    )


def _engine_error(what: str, error: BaseException) -> EngineError:
    # APIError is itself a requests HTTPError: an answer, not a missing engine.
    if isinstance(error, requests.RequestException) and not isinstance(error, APIError):
        return EngineUnavailableError(f"{what}: the engine did not answer: {_reason(error)}")
    return EngineError(f"{what}: {_reason(error)}")


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except (APIError, DockerException, requests.RequestException) as error:
        raise _engine_error(what, error) from None
