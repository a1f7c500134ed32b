"""Runs that cannot start leave nothing behind; output is kept as written and reaches a
terminal escaped; a signal to a foreground `jobs run` cancels its run."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.engines import JOB_IMAGE

pytestmark = pytest.mark.docker


def managed(docker_client: Any, test_label: dict[str, str]) -> list[Any]:
    ((key, value),) = test_label.items()
    return docker_client.containers.list(
        all=True,
        filters={"label": [f"{key}={value}", "orchestrator.managed=true"]},
        ignore_removed=True,  # one removed between the engine's list and its inspect
    )


@pytest.fixture
def shell_less_image(docker_client: Any, test_label: dict[str, str]) -> Iterator[str]:
    """An image with nothing but a static busybox at /busybox: no /bin/sh."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        dockerfile = b"FROM scratch\nCOPY busybox /busybox\n"
        entry = tarfile.TarInfo("Dockerfile")
        entry.size = len(dockerfile)
        tar.addfile(entry, io.BytesIO(dockerfile))
        tar.add("/bin/busybox", arcname="busybox")
    context.seek(0)
    tag = f"local/noshell:{uuid.uuid4().hex[:8]}"
    docker_client.images.build(fileobj=context, custom_context=True, tag=tag, labels=test_label)
    try:
        yield tag
    finally:
        docker_client.images.remove(tag, force=True)


def test_a_command_missing_from_the_image_fails_and_leaves_no_container(
    docker_cli: Any,
    write_jobs: Any,
    docker_client: Any,
    test_label: dict[str, str],
    shell_less_image: str,
) -> None:
    jobs = write_jobs(
        "missing.yaml",
        f"""name: nocmd
schedule: '@daily'
image: {JOB_IMAGE}
command: [/no/such/program]
---
name: nocmd-noshell
schedule: '@daily'
image: {shell_less_image}
pull: never
command: [/no/such/program]
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    # Through the image's shell (see orchestrator.engine.docker.merging): 127, as docker run.
    result = docker_cli("jobs", "run", "nocmd", expect=127)
    assert "/no/such/program: not found" in result.stdout
    # No shell to go through: the engine refuses the start.
    result = docker_cli("jobs", "run", "nocmd-noshell", expect=125)
    assert "cannot start the container" in result.stderr
    assert managed(docker_client, test_label) == []  # neither left in Created
    shown = docker_cli("runs", "show", "2", "--json").stdout
    assert '"status": "failed"' in shown and '"exit_code": null' in shown


def test_stdout_and_stderr_keep_the_order_they_were_written_in(
    docker_cli: Any, write_jobs: Any, shell_less_image: str
) -> None:
    # Docker alone gets two lines out of order in most runs of this (see merging.py).
    jobs = write_jobs(
        "order.yaml",
        f"""name: order
schedule: "@daily"
image: {JOB_IMAGE}
command: ["sh", "-c", "for i in $(seq 20); do echo out$i; echo err$i >&2; done"]
---
name: order-noshell
schedule: "@daily"
image: {shell_less_image}
pull: never
entrypoint: ["/busybox"]
command: ["echo", "runs without a shell"]
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    written = "".join(f"out{i}\nerr{i}\n" for i in range(1, 21))
    for run in range(1, 4):
        docker_cli("jobs", "run", "order")
        shown = json.loads(docker_cli("runs", "show", str(run), "--json").stdout)
        assert shown["output"] == written
    ran = docker_cli("jobs", "run", "order-noshell")
    assert "runs without a shell" in ran.stdout


def test_output_keeps_bytes_and_reaches_the_terminal_escaped(
    docker_cli: Any, write_jobs: Any
) -> None:
    jobs = write_jobs(
        "bytes.yaml",
        f"""name: bytes
schedule: "@daily"
image: {JOB_IMAGE}
command: ["sh", "-c", "printf 'caf\\\\303\\\\251 \\\\377\\\\376 \\\\033]0;pwned\\\\007 done\\\\n'"]
""",
    )
    docker_cli("jobs", "apply", str(jobs))
    ran = docker_cli("jobs", "run", "bytes")
    assert "\x1b" not in ran.stdout and "\\x1b]0;pwned\\x07" in ran.stdout
    raw = docker_cli("jobs", "run", "bytes", "--raw")
    assert "\x1b]0;pwned\x07" in raw.stdout  # asked for: byte for byte
    stored = docker_cli("runs", "show", "2", "--json").stdout
    assert "café \\\\xff\\\\xfe" in stored  # not UTF-8: kept, escaped, never U+FFFD
    assert "\ufffd" not in stored
    logs = docker_cli("runs", "logs", "2").stdout
    assert "\x1b" not in logs and "café" in logs


def test_sigterm_to_a_foreground_run_cancels_it(
    database_url: str, tmp_path: Path, docker_client: Any, test_label: dict[str, str]
) -> None:
    ((key, value),) = test_label.items()
    env = {
        **os.environ,
        "ORCHESTRATOR_DATABASE_URL": database_url,
        "ORCHESTRATOR_CONTAINER_LABELS": f"{key}={value}",
    }
    (tmp_path / "s.yaml").write_text(
        f"name: sleeper\nschedule: '@daily'\nimage: {JOB_IMAGE}\ncommand: [sleep, '300']\n"
    )
    cli = [sys.executable, "-m", "orchestrator"]
    subprocess.run([*cli, "jobs", "apply", str(tmp_path / "s.yaml")], env=env, check=True)
    running = subprocess.Popen([*cli, "jobs", "run", "sleeper"], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
            c.status == "running" for c in managed(docker_client, test_label)
        ):
            time.sleep(0.2)
        running.send_signal(signal.SIGTERM)
        _, err = running.communicate(timeout=60)
    finally:
        if running.poll() is None:  # the test failed before the signal: no stray process
            running.kill()
            running.communicate()
    assert running.returncode == 130, err
    shown = subprocess.run(
        [*cli, "runs", "show", "1", "--json"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert '"status": "cancelled"' in shown
    assert managed(docker_client, test_label) == []
