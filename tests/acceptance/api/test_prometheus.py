"""A real Prometheus (Debian's package, started here on loopback) scrapes the service:
after a run, PromQL over Prometheus' HTTP API gives that job's run counter. The shipped
alert rules load, and every expression of the shipped Grafana dashboard evaluates."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests

from tests.acceptance.api.conftest import ApiService

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(api: ApiService, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: scripts/test.sh installs it (apt prometheus)")
    folder = tmp_path_factory.mktemp("prometheus")
    target = urlparse(api.url).netloc
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", folder / "alerts.yml")
    (folder / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [alerts.yml]\n"
        "scrape_configs:\n"
        f"  - job_name: orchestrator\n    static_configs: [{{targets: ['{target}']}}]\n"
    )
    port = free_port()
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(url + "/-/ready", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((folder / "prometheus.log").read_text(errors="replace"))
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def query(prometheus: str, expr: str) -> dict[str, Any]:
    response = requests.get(prometheus + "/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert body["status"] == "success", (expr, body)
    return dict(body["data"])


def test_prometheus_scrapes_the_run_counter_of_a_job(api: ApiService, prometheus: str) -> None:
    name = f"prom-{uuid.uuid4().hex[:6]}"
    api.apply(f"name: {name}\nschedule: '@yearly'\nimage: IMAGE\ncommand: ['true']\n")
    run = api.post(f"/api/jobs/{name}/run").json()
    api.wait_run(run["id"], ("succeeded",))
    expr = f'orchestrator_runs_total{{job_name="{name}",status="succeeded"}}'
    deadline = time.monotonic() + 30
    while True:
        result = query(prometheus, expr)["result"]
        if result:
            break
        assert time.monotonic() < deadline, f"Prometheus never had {expr}"
        time.sleep(0.5)
    assert [float(item["value"][1]) for item in result] == [1.0]
    assert result[0]["metric"]["job"] == "orchestrator"  # Prometheus' own label, untouched
    up = query(prometheus, 'up{job="orchestrator"}')["result"]
    assert [item["value"][1] for item in up] == ["1"]


def test_the_shipped_alert_rules_load_and_evaluate(prometheus: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        groups = requests.get(prometheus + "/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        evaluated = all(rule.get("lastEvaluation", "").startswith("2") for rule in rules)
        if rules and evaluated and all(rule["health"] == "ok" for rule in rules):
            break
        assert time.monotonic() < deadline, json.dumps(rules, indent=1)[:3000]
        time.sleep(0.5)
    names = {rule["name"] for rule in rules}
    assert {
        "OrchestratorDown",
        "OrchestratorJobFailed",
        "OrchestratorJobLate",
        "OrchestratorJobNotSucceeded",
    } <= names
    # Before the first scrape `up` is absent, so the rule may start pending; once the
    # scheduler is scraped, it is inactive.
    deadline = time.monotonic() + 20
    while True:
        groups = requests.get(prometheus + "/api/v1/rules", timeout=10).json()["data"]["groups"]
        down = next(r for g in groups for r in g["rules"] if r["name"] == "OrchestratorDown")
        if down["state"] == "inactive":
            break
        assert time.monotonic() < deadline, down
        time.sleep(0.5)


def test_every_dashboard_expression_evaluates_on_metrics_we_export(
    api: ApiService, prometheus: str
) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "orchestrator-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(expressions) >= 10
    exported = set(re.findall(r"^# TYPE (\w+)", api.get("/metrics", token=None).text, re.M))
    for expr in expressions:
        query(prometheus, expr)  # parses and evaluates
        for name in re.findall(r"\b(orchestrator_\w+)", expr):
            family = re.sub(r"_(bucket|count|sum|total)$", "", name)
            assert name in exported or family in exported, (name, expr)
