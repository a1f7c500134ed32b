"""The service's engine behind a real filtering proxy (Debian's HAProxy with the config
shipped in deploy/socket-proxy): jobs run, ports lease, doctor works; a call outside the
allowed set fails with one clear line."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.engines import JOB_IMAGE

pytestmark = pytest.mark.docker
CONFIG = Path(__file__).resolve().parents[3] / "deploy" / "socket-proxy" / "haproxy.cfg"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def proxy(docker_client: Any, tmp_path: Path) -> Iterator[str]:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    assert os.path.exists(haproxy), "haproxy is not installed (.ci/run installs it)"
    port = _free_port()
    env = {
        **os.environ,
        "PROXY_BIND": f"127.0.0.1:{port}",
        "ENGINE_SOCKET": "/var/run/docker.sock",
        "ALLOW_PULLS": "0",
    }
    log = (tmp_path / "haproxy.log").open("wb")
    process = subprocess.Popen(
        [haproxy, "-db", "-f", str(CONFIG)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if requests.get(f"{url}/_ping", timeout=1).text == "OK":
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            pytest.fail(f"haproxy did not answer: {(tmp_path / 'haproxy.log').read_text()}")
        yield f"tcp://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_jobs_run_through_the_proxy_and_what_it_refuses_is_named(
    proxy: str, docker_cli: Any, write_jobs: Any
) -> None:
    base = proxy.replace("tcp://", "http://")
    assert requests.get(f"{base}/volumes", timeout=5).status_code == 403  # it filters
    assert requests.post(f"{base}/containers/x/exec", timeout=5).status_code == 403
    archive = f"{base}/containers/x/archive?path=/"
    assert requests.get(archive, timeout=5).status_code == 403  # no reads of files
    assert requests.head(archive, timeout=5).status_code == 404  # a stat reaches the engine
    jobs = write_jobs(
        "proxied.yaml",
        f"""
- name: proxied
  schedule: "@daily"
  image: {JOB_IMAGE}
  ports: ["8080"]
  command:
    - sh
    - -c
    - echo leased=$ORCHESTRATOR_PORT_8080; for i in $(seq 9); do echo $i; echo $i >&2; done
- name: pulls
  schedule: "@daily"
  image: {JOB_IMAGE}
  pull: always
  command: ["true"]
- name: wants-socket
  schedule: "@daily"
  image: {JOB_IMAGE}
  docker_socket: true
  command: ["true"]
""",
    )
    docker_cli.env["DOCKER_HOST"] = proxy
    docker_cli("jobs", "apply", str(jobs))
    ran = docker_cli("jobs", "run", "proxied")
    assert ran.stdout.startswith("leased=20")
    # Merged through the image's shell, which the proxy lets the engine stat.
    assert ran.stdout.endswith("".join(f"{i}\n{i}\n" for i in range(1, 10)))
    assert json.loads(docker_cli("doctor", "--json").stdout)["ok"] is True
    refused = docker_cli("jobs", "run", "pulls", expect=125)
    (line,) = refused.stderr.strip().splitlines()
    assert "POST /images/create was refused (403) before it reached the engine" in line
    no_socket = docker_cli("jobs", "run", "wants-socket", "--allow-privileged-jobs", expect=125)
    assert f"reaches the engine at {proxy}, not through a socket" in no_socket.stderr


def test_a_start_cannot_carry_a_host_config_through_the_proxy(
    proxy: str, docker_client: Any, test_label: dict[str, str]
) -> None:
    """The attack: engines before Docker 25 take a HostConfig in the body of a start on
    API < 1.24, so a container created harmless would start privileged, binding /."""
    base = proxy.replace("tcp://", "http://")
    created = requests.post(
        f"{base}/v1.41/containers/create",
        json={"Image": JOB_IMAGE, "Cmd": ["true"], "Labels": test_label},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    handle = created.json()["Id"]
    escalate = {"Privileged": True, "Binds": ["/:/host"]}
    start = f"{base}/v1.23/containers/{handle}/start"
    assert requests.post(start, json=escalate, timeout=30).status_code == 403
    chunked = iter([json.dumps(escalate).encode()])  # no Content-Length: chunked
    assert requests.post(start, data=chunked, timeout=30).status_code == 403
    kept = docker_client.api.inspect_container(handle)["HostConfig"]
    assert kept["Privileged"] is False and not kept["Binds"]
    assert requests.post(f"{base}/v1.41/containers/{handle}/start", timeout=30).status_code == 204
