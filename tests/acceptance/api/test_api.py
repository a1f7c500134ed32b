"""The HTTP API over a real service process, real HTTP and the real engine: every endpoint,
the same JSON as the CLI, auth, bad input, the audit."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import yaml

from tests.acceptance.api.conftest import (
    READ_TOKEN,
    WRITE_TOKEN,
    ApiService,
    sign_in,
    sse_events,
)
from tests.conftest import Cli


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def job_text(name: str, command: str = "echo hello", schedule: str = "0 0 1 1 *") -> str:
    return (
        f"name: {name}\nschedule: '{schedule}'\nimage: IMAGE\n"
        f"command: {json.dumps(['sh', '-c', command])}\n"
    )


def queue(api: ApiService, name: str, **params: Any) -> dict[str, Any]:
    response = api.post(f"/api/jobs/{name}/run", params=params)
    assert response.status_code == 202, response.text
    return dict(response.json())


# --- jobs ---------------------------------------------------------------------------------


def test_jobs_applied_over_http_are_listed_and_shown_as_the_cli_shows_them(
    api: ApiService,
) -> None:
    name = unique("shape")
    response = api.apply(job_text(name))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "created": [name],
        "updated": [],
        "unchanged": [],
        "deleted": [],
        "dry_run": False,
    }
    cli = Cli(api.database_url)
    listed = {job["name"]: job for job in api.get("/api/jobs").json()}
    cli_listed = {job["name"]: job for job in json.loads(cli("jobs", "list", "--json").stdout)}
    assert listed[name] == cli_listed[name]
    assert listed[name]["source"] == "api:alice"
    shown = api.get(f"/api/jobs/{name}").json()
    assert shown == json.loads(cli("jobs", "show", name, "--json").stdout)
    assert len(shown["next_runs"]) == 5
    # The same file again changes nothing.
    assert api.apply(job_text(name)).json()["unchanged"] == [name]


def test_a_dry_run_writes_nothing_and_a_bad_file_is_422_and_changes_nothing(
    api: ApiService,
) -> None:
    name, other = unique("dry"), unique("kept")
    assert api.apply(job_text(other)).status_code == 200
    dry = api.apply(job_text(name), dry_run="true")
    assert dry.status_code == 200 and dry.json()["created"] == [name]
    assert dry.json()["dry_run"] is True
    assert api.get(f"/api/jobs/{name}").status_code == 404
    # One bad job in the batch: nothing of the batch is written.
    bad = api.apply(job_text(name) + "---\n" + job_text(unique("bad")).replace("0 0 1 1 *", "x"))
    assert bad.status_code == 422, bad.text
    assert "schedule" in bad.json()["error"]
    assert api.get(f"/api/jobs/{name}").status_code == 404
    broken = api.apply("name: [")
    assert broken.status_code == 422 and "invalid YAML" in broken.json()["error"]
    not_text = api.post("/api/jobs/apply", data=b"\xff\xfe\x00")
    assert not_text.status_code == 422
    assert api.get(f"/api/jobs/{other}").status_code == 200


def test_a_job_file_binding_a_system_part_is_refused_by_the_api(api: ApiService) -> None:
    name = unique("cron-writer")
    refused = api.apply(job_text(name) + "volumes: ['/etc/cron.d:/c']\n")
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert f"job '{name}': volumes: /etc/cron.d:/c: host path /etc/cron.d lies in /etc" in error
    assert "ORCHESTRATOR_ALLOWED_HOST_PATHS" in error
    assert api.get(f"/api/jobs/{name}").status_code == 404  # nothing applied


def test_prune_through_the_api_refuses_to_empty_the_database_without_force(
    api: ApiService,
) -> None:
    refused = api.post("/api/jobs/apply", data=b"[]", params={"prune": "true"})
    assert refused.status_code == 409, refused.text
    assert "--force" in refused.json()["error"]
    assert api.get("/api/jobs").json() != []


def test_enable_disable_delete_and_unknown_jobs(api: ApiService) -> None:
    name = unique("switch")
    api.apply(job_text(name))
    assert api.post(f"/api/jobs/{name}/disable").json() == {
        "name": name,
        "enabled": False,
        "changed": True,
    }
    assert api.post(f"/api/jobs/{name}/disable").json()["changed"] is False
    assert api.get(f"/api/jobs/{name}").json()["next_run_at"] is None
    refused = api.post(f"/api/jobs/{name}/run")
    assert refused.status_code == 409 and "disabled" in refused.json()["error"]
    assert api.post(f"/api/jobs/{name}/enable").json()["enabled"] is True
    assert api.request("DELETE", f"/api/jobs/{name}").json() == {"deleted": name}
    for method, path in [
        ("GET", f"/api/jobs/{name}"),
        ("POST", f"/api/jobs/{name}/enable"),
        ("POST", f"/api/jobs/{name}/run"),
        ("DELETE", f"/api/jobs/{name}"),
    ]:
        response = api.request(method, path)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json() == {"error": f"no job named {name!r}"}


def test_export_gives_every_job_as_a_file_that_applies_back_and_masks_secret_values(
    api: ApiService, tmp_path: Any
) -> None:
    name = unique("export")
    api.apply(job_text(name) + "environment:\n  API_PASSWORD: hunter2-hunter2\n  MODE: fast\n")
    response = api.get("/api/jobs/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    text = response.text
    assert "hunter2" not in text
    documents = [doc for doc in yaml.safe_load_all(text) if doc]
    mine = next(doc for doc in documents if doc["name"] == name)
    assert mine["environment"] == {"API_PASSWORD": "***", "MODE": "fast"}
    # Applied to an empty database, the export gives the same jobs.
    target = Cli(f"sqlite:///{tmp_path / 'copy.db'}")
    target("db", "upgrade")
    (tmp_path / "export.yaml").write_text(text)
    target("jobs", "apply", str(tmp_path / "export.yaml"))
    copied = json.loads(target("jobs", "show", name, "--json").stdout)
    assert copied["definition"] == api.get(f"/api/jobs/{name}").json()["definition"]
    cli_export = Cli(api.database_url)("jobs", "export").stdout
    assert [d["name"] for d in yaml.safe_load_all(cli_export) if d] == [
        d["name"] for d in documents
    ]


# --- runs ---------------------------------------------------------------------------------


def test_a_queued_run_is_started_by_the_service_and_shown_as_the_cli_shows_it(
    api: ApiService,
) -> None:
    name = unique("run")
    api.apply(job_text(name, "echo out-$((40+2))"))
    queued = queue(api, name)
    assert queued["status"] == "pending" and queued["trigger"] == "manual"
    run = api.wait_run(queued["id"], ("succeeded", "failed"))
    assert run["status"] == "succeeded", run
    assert run["output"] == "out-42\n"
    cli = Cli(api.database_url)
    assert run == json.loads(cli("runs", "show", str(queued["id"]), "--json").stdout)
    listed = api.get("/api/runs", params={"job": name}).json()
    assert listed == json.loads(cli("runs", "list", "--job", name, "--json").stdout)
    assert [item["id"] for item in listed] == [queued["id"]]
    assert api.get("/api/runs", params={"job": name, "status": "failed"}).json() == []
    assert len(api.get("/api/runs", params={"job": name, "since": "1h"}).json()) == 1
    assert api.get("/api/runs", params={"job": name, "since": "2999-01-01"}).json() == []


def test_cancel_stops_a_running_run_and_a_finished_run_cannot_be_cancelled(
    api: ApiService, docker_client: Any
) -> None:
    name = unique("cancel")
    api.apply(job_text(name, "sleep 300"))
    run = api.wait_run(queue(api, name)["id"], ("running",))
    answer = api.post(f"/api/runs/{run['id']}/cancel", params={"grace": 0})
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    ended = api.wait_run(run["id"], ("cancelled",))
    # (the low-level list: it does not inspect each container, which may be removed meanwhile)
    found = docker_client.api.containers(all=True, filters={"id": run["container_id"]})
    assert not found or found[0]["State"] != "running"
    again = api.post(f"/api/runs/{run['id']}/cancel")
    assert again.status_code == 409
    assert again.json() == {"error": f"run {run['id']} has already ended (cancelled)"}
    assert ended["status"] == "cancelled"


def test_logs_of_a_finished_run_are_its_tail_then_the_end(api: ApiService) -> None:
    name = unique("tail")
    api.apply(job_text(name, "echo one; echo two"))
    run = api.wait_run(queue(api, name)["id"], ("succeeded",))
    with api.get(f"/api/runs/{run['id']}/logs", stream=True) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = list(sse_events(response))
    assert [event for event, _ in events] == ["end"]
    assert events[0][1]["status"] == "succeeded"
    assert events[0][1]["output"] == "one\ntwo\n"
    assert events[0][1]["streamed"] is False


def test_logs_of_a_running_run_stream_live_then_the_end(api: ApiService) -> None:
    name = unique("live")
    api.apply(job_text(name, "echo first; sleep 2; echo second; sleep 1; echo third"))
    run = api.wait_run(queue(api, name)["id"], ("running",))
    with api.get(f"/api/runs/{run['id']}/logs", stream=True) as response:
        events = list(sse_events(response))
    names = [event for event, _ in events]
    assert names[-1] == "end" and set(names[:-1]) == {"output"}, names
    text = "".join(data["text"] for event, data in events if event == "output")
    assert text == "first\nsecond\nthird\n"
    assert events[-1][1]["status"] == "succeeded" and events[-1][1]["streamed"] is True


def test_logs_of_a_pending_run_wait_for_its_start(api: ApiService) -> None:
    from datetime import UTC, datetime, timedelta

    from orchestrator.records import NewRun, RunTrigger
    from orchestrator.store.database import Database
    from orchestrator.store.facade import Store

    name = unique("pending")
    api.apply(job_text(name, "echo started"))
    # A retry whose backoff ends in 3 s: pending until then, whatever the service's pace.
    database = Database(api.database_url)
    try:
        run = Store(database).record_run(
            NewRun(
                job=name,
                scheduled_for=datetime.now(UTC),
                trigger=RunTrigger.RETRY,
                attempt=2,
                due_at=datetime.now(UTC) + timedelta(seconds=3),
            )
        )
    finally:
        database.dispose()
    with api.get(f"/api/runs/{run.id}/logs", stream=True) as response:
        events = list(sse_events(response))
    names = [event for event, _ in events]
    assert names[0] == "waiting" and events[0][1]["status"] == "pending"
    assert names[-1] == "end" and events[-1][1]["status"] == "succeeded"
    text = "".join(data["text"] for event, data in events if event == "output")
    assert text == "started\n" or events[-1][1]["output"] == "started\n"


# --- ports, audit, health ------------------------------------------------------------------


def test_ports_list_leases_as_the_cli_does(api: ApiService) -> None:
    name = unique("port")
    api.apply(job_text(name, "sleep 300") + "ports: ['8080']\n")
    run = api.wait_run(queue(api, name)["id"], ("running",))
    leases = api.get("/api/ports").json()
    mine = [lease for lease in leases if lease["run"] == run["id"]]
    assert len(mine) == 1 and mine[0]["container_port"] == 8080 and mine[0]["job"] == name
    assert leases == json.loads(Cli(api.database_url)("ports", "list", "--json").stdout)
    api.post(f"/api/runs/{run['id']}/cancel", params={"grace": 0})
    api.wait_run(run["id"], ("cancelled",))


def test_every_write_is_audited_with_who_and_the_result(api: ApiService) -> None:
    name = unique("audit")
    api.apply(job_text(name))
    api.post(f"/api/jobs/{name}/disable")
    api.post(f"/api/jobs/{name}/run")  # refused: disabled
    cli = Cli(api.database_url)
    cli("jobs", "enable", name)
    entries = [entry for entry in api.get("/api/audit").json() if entry["target"] == name]
    assert [(e["actor"], e["action"], e["result"].split(":")[0]) for e in entries] == [
        (entries[0]["actor"], "jobs.enable", "ok"),
        ("api:alice", "jobs.run", "error"),
        ("api:alice", "jobs.disable", "ok"),
    ]
    assert entries[0]["actor"].startswith("cli:")
    assert "disabled" in entries[1]["result"]
    cli_entries = json.loads(cli("audit", "list", "--json").stdout)
    assert [e for e in cli_entries if e["target"] == name] == entries


def test_health_and_readiness(api: ApiService) -> None:
    health = api.get("/healthz", token=None)
    assert health.status_code == 200
    assert set(health.json()["loops"]) == {"fires", "claims", "maintenance", "launches"}
    assert api.get("/readyz", token=None).json() == {"status": "ready"}
    document = api.get("/openapi.json", token=None).json()
    assert "/api/runs/{run_id}/logs" in document["paths"]


def test_chains_run_and_a_chained_to_job_is_not_deleted_without_force(
    api: ApiService,
) -> None:
    parent, child = unique("parent"), unique("child")
    applied = api.apply(job_text(child) + "---\n" + job_text(parent) + f"on_success: [{child}]\n")
    assert applied.status_code == 200, applied.text
    started = queue(api, parent)
    api.wait_run(started["id"], ("succeeded",))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = api.get("/api/runs", params={"job": child}).json()
        if runs and runs[0]["status"] == "succeeded":
            break
        time.sleep(0.2)
    assert [(r["trigger"], r["parent_run_id"]) for r in runs] == [("chain", started["id"])]
    page, _ = sign_in(api.url, WRITE_TOKEN)
    shown = page.get(f"{api.url}/runs/{runs[0]['id']}").text
    assert f'Chained from</dt><dd><a href="/runs/{started["id"]}">' in shown
    refused = api.request("DELETE", f"/api/jobs/{child}")
    assert refused.status_code == 409
    assert refused.json() == {
        "error": f"job {child!r} is chained to by {parent!r}: change those first, "
        "or delete it anyway with --force"
    }
    assert api.request("DELETE", f"/api/jobs/{child}", params={"force": "true"}).status_code == 200
    cycle = api.apply(job_text(child) + f"on_success: [{parent}]\n")
    assert cycle.status_code == 422 and "jobs chain in a cycle" in cycle.json()["error"]


def test_metrics_count_runs_by_job_name(api: ApiService) -> None:
    name = unique("metric")
    api.apply(job_text(name, "exit 3"))
    api.wait_run(queue(api, name)["id"], ("failed",))
    text = api.metrics_with(f'orchestrator_runs_total{{job_name="{name}",status="failed"}} 1.0')
    for family in (
        "orchestrator_runs_in_flight",
        "orchestrator_port_leases",
        "orchestrator_port_pool_size",
        "orchestrator_job_next_fire_timestamp_seconds",
        "orchestrator_fires_total",
        "orchestrator_engine_up 1.0",
        "orchestrator_database_up 1.0",
        "orchestrator_build_info",
        "orchestrator_run_duration_seconds_bucket",
        "orchestrator_run_start_lateness_seconds_bucket",
        "orchestrator_launch_slots 4.0",
        "orchestrator_launches_in_flight",
        "orchestrator_launch_backlog",
        "orchestrator_launch_oldest_wait_seconds",
        "orchestrator_launch_saturated 0.0",
    ):
        assert family in text, family
    assert 'orchestrator_run_duration_seconds_bucket{job_name="' not in text


# --- auth ---------------------------------------------------------------------------------

WRITES = [
    ("POST", "/api/jobs/apply"),
    ("POST", "/api/jobs/x/run"),
    ("POST", "/api/jobs/x/enable"),
    ("POST", "/api/jobs/x/disable"),
    ("DELETE", "/api/jobs/x"),
    ("POST", "/api/runs/1/cancel"),
]
READS = ["/api/jobs", "/api/jobs/x", "/api/jobs/export", "/api/runs", "/api/runs/1"]
READS += ["/api/ports", "/api/audit"]


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_writes_need_a_write_token(api: ApiService, method: str, path: str) -> None:
    missing = api.request(method, path, token=None)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = api.request(method, path, token="x" * 40)
    assert wrong.status_code == 401 and wrong.json() == {"error": "the token is not known"}
    malformed = api.request(method, path, token=None, headers={"Authorization": "Basic abc"})
    assert malformed.status_code == 401
    read_only = api.request(method, path, token=READ_TOKEN)
    assert read_only.status_code == 403
    assert read_only.json() == {"error": "token 'bob' may only read"}


@pytest.mark.parametrize("path", READS)
def test_reads_need_a_token_unless_opened(api: ApiService, path: str) -> None:
    assert api.get(path, token=None).status_code == 401
    assert api.get(path, token="y" * 40).status_code == 401
    assert api.get(path, token=READ_TOKEN).status_code in (200, 404)
    assert api.get(path, token=WRITE_TOKEN).status_code in (200, 404)


def test_health_and_metrics_are_open(api: ApiService) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
        assert api.get(path, token=None).status_code == 200, path


# --- bad input ----------------------------------------------------------------------------

BAD = [
    ("GET", "/api/runs/abc", 400, "run_id"),
    ("GET", "/api/runs/0", 400, "run_id"),
    ("GET", "/api/runs/-5", 400, "run_id"),
    ("GET", f"/api/runs/{2**64}", 400, "run_id"),
    ("GET", "/api/runs/999999999", 404, "no run with id 999999999"),
    ("GET", "/api/runs/999999999/logs", 404, "no run with id"),
    ("POST", "/api/runs/999999999/cancel", 404, "no run with id"),
    ("GET", "/api/runs?limit=-1", 400, "limit"),
    ("GET", "/api/runs?limit=0", 400, "limit"),
    ("GET", "/api/runs?limit=100000", 400, "limit"),
    ("GET", "/api/runs?limit=ten", 400, "limit"),
    ("GET", "/api/runs?before=0", 400, "before"),
    ("GET", "/api/runs?since=yesterday", 400, "since"),
    ("GET", "/api/runs?since=99999999999d", 400, "since"),
    ("GET", "/api/runs?status=sleeping", 400, "status"),
    ("GET", "/api/audit?limit=-3", 400, "limit"),
    ("POST", "/api/runs/1/cancel?grace=-1", 400, "grace"),
    ("POST", "/api/runs/1/cancel?grace=99999999", 400, "grace"),
    ("POST", "/api/jobs/apply?dry_run=maybe", 400, "dry_run"),
    ("GET", "/api/nothing", 404, "Not Found"),
    ("PUT", "/api/jobs", 405, "Method Not Allowed"),
]


@pytest.mark.parametrize(("method", "path", "status", "says"), BAD)
def test_bad_input_is_a_json_error_never_a_500(
    api: ApiService, method: str, path: str, status: int, says: str
) -> None:
    response = api.request(method, path)
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and says in body["error"]
    assert "Traceback" not in response.text and "\n" not in body["error"]


def test_a_body_too_large_is_413(api: ApiService) -> None:
    response = api.post("/api/jobs/apply", data=b"#" * (1024 * 1024 + 1))
    assert response.status_code == 413 and "larger" in response.json()["error"]
    # Sent in chunks, without a Content-Length: counted as it comes.
    chunked = api.post("/api/jobs/apply", data=iter([b"#" * 65536] * 17))
    assert chunked.status_code == 413 and "larger" in chunked.json()["error"]


def test_odd_job_names_in_the_path_are_404s(api: ApiService) -> None:
    for name in ["..", "a%2Fb", "%00", "x" * 5000, "é", "%FF"]:
        response = api.get(f"/api/jobs/{name}")
        assert response.status_code == 404, (name, response.text)
        assert len(response.json()["error"]) < 200
    assert "Traceback" not in api.output()


def test_a_job_pinning_a_low_host_port_is_refused_at_apply(api: ApiService) -> None:
    name = unique("squat")
    answer = api.apply(job_text(name) + "ports: ['53:53/udp']\n")
    assert answer.status_code == 422
    assert answer.json()["error"] == (
        f"api:alice: job {name!r}: ports[0]: host port 53 is below 1024, where the host's "
        "own services listen: pin one from 1024 up, or set ORCHESTRATOR_ALLOW_LOW_PORTS=true"
    )
    assert api.get(f"/api/jobs/{name}").status_code == 404
