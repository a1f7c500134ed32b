"""The secrets policy against `serve --http` as a real process: its API tokens file sits
in the secrets directory, as compose secrets put it, and jobs try to read it; env files
that would block a launch; secret-looking variables printed by a job, streamed live."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from tests.acceptance.api.conftest import (
    WRITE_TOKEN,
    ApiService,
    sse_events,
    start_api_service,
    stop_api_service,
)
from tests.acceptance.service.test_notifications import Receiver
from tests.support.engines import apply_jobs, job_spec

pytestmark = pytest.mark.docker


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.start()
    yield found
    found.stop()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "db_password").write_text("pw-for-backups\n")
    return tmp_path


@pytest.fixture
def serve(folder: Path, docker_client: Any) -> Iterator[Any]:
    """Start `serve --http` with the folder as its secrets directory (the tokens file,
    `tokens`, is in it)."""
    started: list[ApiService] = []

    def start(*args: str, **env: str) -> ApiService:
        service = start_api_service(
            folder,
            f"sqlite:///{folder / 'orchestrator.db'}",
            uuid.uuid4().hex,
            *args,
            env={"ORCHESTRATOR_SECRETS_DIR": str(folder), **env},
        )
        started.append(service)
        return service

    yield start
    for service in started:
        stop_api_service(service, docker_client)


def job_text(name: str, extra: str, command: str = "echo hello") -> str:
    return (
        f"name: {name}\nschedule: '0 0 1 1 *'\nimage: IMAGE\n"
        f"command: {json.dumps(['sh', '-c', command])}\n{extra}"
    )


def run_of(api: ApiService, name: str) -> int:
    response = api.post(f"/api/jobs/{name}/run")
    assert response.status_code == 202, response.text
    return int(response.json()["id"])


def test_a_ping_that_names_the_tokens_file_sends_nothing(
    serve: Any, folder: Path, receiver: Receiver
) -> None:
    api = serve()
    base = f"http://127.0.0.1:{receiver.port}"
    leak = "{{secret:tokens}}"
    extra = f'ping: "{base}/ping/{leak}"\nnotify: [{{webhook: "{base}/{leak}"}}]\n'
    # Applied over the API: refused, in one line, and nothing created.
    refused = api.apply(job_text("leaky", extra))
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"] == (
        f"job 'leaky': notify[0].url: {folder}/tokens is the file the service's "
        "ORCHESTRATOR_API_TOKENS_FILE reads, which no job may name (no setting permits it)"
    )
    assert api.get("/api/jobs/leaky").status_code == 404
    # Stored before the service had the setting (straight into the database): its run is
    # refused at launch, and the failure's ping and webhook are never sent.
    apply_jobs(
        api.database_url,
        job_spec(
            name="leaky",
            ping=f"{base}/ping/{leak}",
            notify=[{"webhook": f"{base}/{leak}"}],
            command=["true"],
        ),
    )
    run = api.wait_run(run_of(api, "leaky"), ("failed",), timeout=30)
    assert run["container_id"] is None
    assert "ORCHESTRATOR_API_TOKENS_FILE reads" in run["error"]
    database = Database(api.database_url)
    try:
        store = Store(database)
        deadline = time.monotonic() + 30
        while True:
            tried = [item for item in store.notifications(job="leaky") if item.attempts >= 1]
            if len(tried) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        database.dispose()
    assert sorted(item.method for item in tried) == ["GET", "POST"], tried
    assert receiver.received == [] and receiver.pinged == []  # the tokens never left
    for item in tried:
        (answer,) = item.answers
        assert "ORCHESTRATOR_API_TOKENS_FILE reads" in str(answer.get("error")), answer
    assert WRITE_TOKEN not in api.output()


def test_env_files_on_a_fifo_or_dev_zero_hold_no_launch_slot(serve: Any, folder: Path) -> None:
    import os

    os.mkfifo(folder / "pipe.env")
    # One launch slot: a launch that blocked would hold it, and the plain job would wait.
    api = serve("--max-parallel-launches", "1", ORCHESTRATOR_ALLOWED_HOST_PATHS="/dev")
    for name, extra in (
        ("fifo", f"env_file: {folder}/pipe.env\n"),
        ("zero", "env_file: /dev/zero\n"),
        ("plain", ""),
    ):
        response = api.apply(job_text(name, extra))
        assert response.status_code == 200, response.text
    started = time.monotonic()
    fifo, zero = run_of(api, "fifo"), run_of(api, "zero")
    plain = run_of(api, "plain")
    assert api.wait_run(plain, ("succeeded",), timeout=30)["output"] == "hello\n"
    refused = {
        name: api.wait_run(run_id, ("failed",), timeout=10)
        for name, run_id in (("fifo", fifo), ("zero", zero))
    }
    assert time.monotonic() - started < 30
    assert refused["fifo"]["error"] == (
        f"job 'fifo': env_file {folder}/pipe.env is a FIFO, not a regular file: refused, "
        "nothing read"
    )
    assert refused["zero"]["error"] == (
        "job 'zero': env_file /dev/zero is a character device, not a regular file: refused, "
        "nothing read"
    )
    assert all(run["container_id"] is None for run in refused.values())


def test_a_secret_looking_variable_is_masked_live_and_stored(serve: Any, folder: Path) -> None:
    value = "tok-" + uuid.uuid4().hex
    api = serve()
    extra = f"environment: {{API_TOKEN: {value}, COLOUR: blue}}\n"
    command = 'echo "token=$API_TOKEN"; sleep 2; echo "again $API_TOKEN $COLOUR"'
    assert api.apply(job_text("talker", extra, command)).status_code == 200
    run = api.wait_run(run_of(api, "talker"), ("running",), timeout=30)
    with api.get(f"/api/runs/{run['id']}/logs", stream=True) as response:
        events = list(sse_events(response))
    live = "".join(data["text"] for event, data in events if event == "output")
    assert events[-1][1]["streamed"] is True  # it was read live from the container
    assert live == "token=***\nagain *** blue\n"
    assert api.get(f"/api/runs/{run['id']}").json()["output"] == live
    stored = b"".join(path.read_bytes() for path in folder.glob("orchestrator.db*"))
    assert b"token=***" in stored  # the file is read for real: the masked output is in it
    assert f"token={value}".encode() not in stored and f"again {value}".encode() not in stored
