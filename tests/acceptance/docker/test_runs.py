"""One run of one job as a sibling container, against the real engine, on both databases."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from orchestrator.records import RunRecord, RunStatus, RunTrigger
from orchestrator.store.database import Database
from orchestrator.store.leases import PortLeaseRepository
from orchestrator.store.migrations import HEAD
from orchestrator.store.runs import RunRepository
from tests.support.engines import TEST_LABEL, apply_jobs, job_spec

pytestmark = pytest.mark.docker


def run_once(launcher: Any, spec: Any, **kwargs: Any) -> RunRecord:
    run = launcher.queue(spec, RunTrigger.MANUAL)
    result: RunRecord = launcher.execute(run, spec, **kwargs)
    return result


def containers_of(docker_client: Any, test_label: dict[str, str]) -> list[Any]:
    ((key, value),) = test_label.items()
    return docker_client.containers.list(all=True, filters={"label": f"{key}={value}"})


def test_a_successful_run_is_recorded_whole_and_leaves_nothing(
    make_launcher: Any, docker_client: Any, test_label: dict[str, str], database: Database
) -> None:
    launcher = make_launcher()
    spec = job_spec(name="hello", command=["sh", "-c", "echo out; echo err >&2"])
    seen: dict[str, Any] = {}

    def on_running(run: RunRecord) -> None:
        with database.session() as session:
            current = RunRepository(session).get(run.id)
        seen["status"] = current.status
        seen["labels"] = docker_client.containers.get(current.container_id).labels

    chunks: list[bytes] = []
    run = run_once(launcher, spec, on_output=chunks.append, on_running=on_running)
    assert run.status is RunStatus.SUCCEEDED and run.exit_code == 0 and run.error is None
    assert sorted(run.output.splitlines()) == ["err", "out"]  # type: ignore[union-attr]
    assert b"".join(chunks).decode().count("\n") == 2
    assert run.trigger is RunTrigger.MANUAL
    assert (
        run.started_at
        and run.finished_at
        and run.scheduled_for <= run.started_at <= run.finished_at
    )
    assert run.container_id and run.image_digest and run.image_digest.startswith("sha256:")
    assert seen["status"] is RunStatus.RUNNING
    assert seen["labels"]["orchestrator.managed"] == "true"
    assert seen["labels"]["orchestrator.job"] == "hello"
    assert seen["labels"]["orchestrator.run"] == str(run.id)
    assert containers_of(docker_client, test_label) == []


def test_a_failing_job_records_its_exit_code(make_launcher: Any) -> None:
    run = run_once(make_launcher(), job_spec(name="fails", command=["sh", "-c", "exit 3"]))
    assert (run.status, run.exit_code, run.error) == (RunStatus.FAILED, 3, "exit status 3")


def test_output_keeps_a_bounded_tail(make_launcher: Any) -> None:
    launcher = make_launcher(output_limit=64 * 1024)
    # 300 KB of numbered lines, then a last line we must keep.
    command = "i=0; while [ $i -lt 30000 ]; do echo line-$i; i=$((i+1)); done; echo THE-END"
    run = run_once(launcher, job_spec(name="chatty", command=["sh", "-c", command]))
    assert run.status is RunStatus.SUCCEEDED
    assert run.output_truncated and run.output_limit == 64 * 1024
    assert run.output is not None and len(run.output.encode()) <= 64 * 1024
    assert run.output.endswith("line-29999\nTHE-END\n")


def test_output_followed_live_is_read_from_the_engine_once(make_launcher: Any) -> None:
    # A live stream can end early (moby#43860), so it is read again after the exit from
    # the last entry seen: to the nanosecond, not the whole last second or two, which
    # read a fast job's whole output twice.
    launcher = make_launcher()
    entries = 0
    logs = launcher.engine.logs

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal entries
        for entry in logs(*args, **kwargs):
            entries += 1
            yield entry

    launcher.engine.logs = counted
    shown: list[bytes] = []
    run = run_once(
        launcher, job_spec(name="fast", command=["seq", "20000"]), on_output=shown.append
    )
    expected = "".join(f"{i}\n" for i in range(1, 20001))
    assert run.status is RunStatus.SUCCEEDED and run.output == expected
    assert b"".join(shown).decode() == expected
    assert entries < 20000 * 1.1, f"{entries} log entries read for 20,000 lines"


def test_runs_of_one_image_in_the_same_seconds_ask_the_engine_for_it_once(
    make_launcher: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.engine.docker import adapter

    launcher = make_launcher()
    asked: list[str] = []
    inspect = launcher.engine.api.inspect_image

    def counted(reference: str) -> Any:
        asked.append(reference)
        return inspect(reference)

    launcher.engine.api.inspect_image = counted
    spec = job_spec(name="again", command=["true"])
    run_once(launcher, spec)
    first = len(asked)  # the image's id, and its shape (whether it has a shell)
    for _ in range(2):
        assert run_once(launcher, spec).status is RunStatus.SUCCEEDED
    assert len(asked) == first
    monkeypatch.setattr(adapter, "IMAGE_ID_REUSE_SECONDS", 0.0)
    assert run_once(launcher, spec).status is RunStatus.SUCCEEDED
    assert len(asked) == first + 1  # asked again once the id is old


def test_environment_user_workdir_entrypoint_and_limits(
    make_launcher: Any, docker_client: Any, database: Database
) -> None:
    spec = job_spec(
        name="shaped",
        entrypoint=["sh", "-c"],
        command=['echo "$GREETING $(id -u):$(id -g) $(pwd) $ORCHESTRATOR_JOB"'],
        environment={"GREETING": "hi"},
        user="65534:65534",
        working_dir="/tmp",
        resources={"memory": "32m", "cpus": 0.5},
    )
    limits: dict[str, Any] = {}

    def on_running(run: RunRecord) -> None:
        with database.session() as session:
            container_id = RunRepository(session).get(run.id).container_id
        limits.update(docker_client.api.inspect_container(container_id)["HostConfig"])

    run = run_once(make_launcher(), spec, on_running=on_running)
    assert run.output == "hi 65534:65534 /tmp shaped\n"
    assert limits["Memory"] == 32 * 1024 * 1024 and limits["NanoCpus"] == 500_000_000


def test_a_timeout_kills_the_container_and_ends_timed_out(
    make_launcher: Any, docker_client: Any, test_label: dict[str, str], database: Database
) -> None:
    started = time.monotonic()
    run = run_once(
        make_launcher(),
        job_spec(name="slow", command=["sleep", "60"], timeout="2s", ports=["8080"]),
    )
    assert time.monotonic() - started < 20
    assert run.status is RunStatus.TIMED_OUT
    assert run.error == "timed out after 2s: killed"
    assert run.ports["8080/tcp"] in range(20000, 21000)
    assert containers_of(docker_client, test_label) == []
    with database.session() as session:
        assert PortLeaseRepository(session).list() == []


def test_a_missing_image_fails_that_run_only(make_launcher: Any) -> None:
    launcher = make_launcher()
    bad = run_once(launcher, job_spec(name="ghost", image="local/does-not-exist:1", pull="never"))
    assert bad.status is RunStatus.FAILED and bad.exit_code is None
    assert (
        bad.error
        == "image 'local/does-not-exist:1' is not on the engine and the pull policy is never"
    )
    pulled = run_once(launcher, job_spec(name="ghost2", image="local/does-not-exist:1"))
    assert pulled.status is RunStatus.FAILED
    assert pulled.error and pulled.error.startswith(
        "image 'local/does-not-exist:1' cannot be pulled"
    )
    good = run_once(launcher, job_spec(name="fine", command=["true"]))
    assert good.status is RunStatus.SUCCEEDED


def test_networks(
    make_launcher: Any, docker_client: Any, test_label: dict[str, str], database: Database
) -> None:
    network = docker_client.networks.create(
        f"orch-test-{test_label[TEST_LABEL][:8]}", labels=test_label
    )
    attached: dict[str, Any] = {}

    def on_running(run: RunRecord) -> None:
        with database.session() as session:
            container_id = RunRepository(session).get(run.id).container_id
        attached.update(
            docker_client.api.inspect_container(container_id)["NetworkSettings"]["Networks"]
        )

    launcher = make_launcher()
    run = run_once(
        launcher,
        job_spec(name="netted", network=network.name, command=["sleep", "0.5"]),
        on_running=on_running,
    )
    assert run.status is RunStatus.SUCCEEDED
    assert list(attached) == [network.name]
    missing = run_once(launcher, job_spec(name="lost", network="no-such-network-here"))
    assert (missing.status, missing.error) == (
        RunStatus.FAILED,
        "network 'no-such-network-here' does not exist",
    )


def test_bind_and_named_volumes_on_the_host(
    make_launcher: Any, tmp_path: Path, test_label: dict[str, str], docker_client: Any
) -> None:
    volume = f"orch-test-{test_label[TEST_LABEL][:8]}"
    docker_client.volumes.create(volume, labels=test_label)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "config.txt").write_text("settings\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out").chmod(0o777)
    spec = job_spec(
        name="files",
        command=[
            "sh",
            "-c",
            "cat /cfg/config.txt > /out/copy.txt; echo kept >> /cache/log; "
            "touch /cfg/x 2>/dev/null && echo writable || echo read-only",
        ],
        volumes=[f"{tmp_path}/in:/cfg:ro", f"{tmp_path}/out:/out", f"{volume}:/cache"],
    )
    launcher = make_launcher()
    first = run_once(launcher, spec)
    second = run_once(launcher, spec)
    assert first.status is RunStatus.SUCCEEDED and first.output == "read-only\n"
    assert (tmp_path / "out" / "copy.txt").read_text() == "settings\n"
    check = run_once(
        launcher,
        job_spec(name="reader", command=["cat", "/cache/log"], volumes=[f"{volume}:/cache"]),
    )
    assert second.status is RunStatus.SUCCEEDED and check.output == "kept\nkept\n"


def test_a_missing_bind_source_fails_clearly(make_launcher: Any, tmp_path: Path) -> None:
    run = run_once(make_launcher(), job_spec(name="nodir", volumes=[f"{tmp_path}/absent:/x"]))
    assert run.status is RunStatus.FAILED
    assert run.error and "absent" in run.error and "does not exist" in run.error


def test_dangerous_requests_need_the_job_and_the_service(
    make_launcher: Any, tmp_path: Path
) -> None:
    refused = run_once(make_launcher(), job_spec(name="root", privileged=True, command=["true"]))
    assert refused.status is RunStatus.FAILED
    assert refused.error and "set ORCHESTRATOR_ALLOW_PRIVILEGED_JOBS=true" in refused.error
    socket = run_once(
        make_launcher(),
        job_spec(name="sock", volumes=["/var/run/docker.sock:/var/run/docker.sock"]),
    )
    assert socket.error and "asks for docker_socket" in socket.error
    # (privileged itself cannot start in our CI sandbox: runc may not apply caps there)
    allowed = run_once(
        make_launcher(allow_privileged_jobs=True),
        job_spec(
            name="root2",
            docker_socket=True,
            command=["sh", "-c", "test -S /var/run/docker.sock && echo socket"],
        ),
    )
    assert allowed.status is RunStatus.SUCCEEDED and allowed.output == "socket\n"


def test_keep_containers_keeps_them(
    make_launcher: Any, docker_client: Any, test_label: dict[str, str]
) -> None:
    run = run_once(make_launcher(keep_containers=True), job_spec(name="kept", command=["true"]))
    (container,) = containers_of(docker_client, test_label)
    assert container.id == run.container_id
    assert container.name.startswith(f"orchestrator-kept-{run.id}-")


def test_cancel_from_another_process_stops_the_container(
    docker_cli: Any,
    docker_client: Any,
    test_label: dict[str, str],
    database: Database,
    database_url: str,
) -> None:
    # The run is held by a foreground `jobs run` in a process of its own; the cancel
    # comes from this one: only the database and the engine join them.
    apply_jobs(database_url, job_spec(name="long", command=["sleep", "120"], ports=["8080"]))
    ((key, value),) = test_label.items()
    env = {
        **os.environ,
        "ORCHESTRATOR_DATABASE_URL": database_url,
        "ORCHESTRATOR_CONTAINER_LABELS": f"{key}={value}",
    }
    holder = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "jobs", "run", "long"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while (
            time.monotonic() < deadline
            and '"status": "running"'
            not in docker_cli("runs", "show", "1", "--json", expect=None).stdout
        ):
            time.sleep(0.2)
        result = docker_cli("runs", "cancel", "1", "--grace", "1")
        assert result.stdout.strip() == "run 1 of long cancelled"
        _, err = holder.communicate(timeout=60)
    finally:
        holder.kill()
    assert holder.returncode == 130, err  # the holder saw its run end as cancelled
    with database.session() as session:
        ended = RunRepository(session).get(1)
        assert PortLeaseRepository(session).list() == []  # released by the holder
    assert ended.status is RunStatus.CANCELLED and ended.exit_code is not None
    assert containers_of(docker_client, test_label) == []  # removed by the holder
    again = docker_cli("runs", "cancel", "1", expect=1)
    assert again.stderr.strip() == "run 1 has already ended (cancelled)"


def test_jobs_run_streams_output_and_exits_with_the_job_exit_code(
    docker_cli: Any, database_url: str
) -> None:
    apply_jobs(
        database_url,
        job_spec(name="speaks", command=["sh", "-c", "echo one; echo two; exit 4"]),
        job_spec(name="quick", command=["echo", "fine"]),
        job_spec(name="late", command=["sleep", "30"], timeout="1s"),
        job_spec(name="noimg", image="local/missing:0", pull="never"),
    )
    failed = docker_cli("jobs", "run", "speaks", expect=4)
    assert failed.stdout == "one\ntwo\n"
    assert failed.stderr.strip().endswith("failed: exit status 4")
    assert docker_cli("jobs", "run", "quick").stdout == "fine\n"
    assert "timed_out" in docker_cli("jobs", "run", "late", expect=124).stderr
    assert "pull policy is never" in docker_cli("jobs", "run", "noimg", expect=125).stderr
    assert docker_cli("jobs", "run", "nobody", expect=1).stderr.strip() == "no job named 'nobody'"
    import json

    runs = json.loads(docker_cli("runs", "list", "--json").stdout)
    assert [(r["job"], r["status"], r["exit_code"]) for r in runs] == [
        ("noimg", "failed", None),
        ("late", "timed_out", 137),
        ("quick", "succeeded", 0),
        ("speaks", "failed", 4),
    ]
    shown = json.loads(docker_cli("runs", "show", str(runs[3]["id"]), "--json").stdout)
    assert shown["output"] == "one\ntwo\n" and shown["output_truncated"] is False


def test_jobs_run_detach_queues_a_pending_run(docker_cli: Any, database_url: str) -> None:
    apply_jobs(database_url, job_spec(name="later", command=["true"]))
    out = docker_cli("jobs", "run", "later", "--detach").stdout
    assert out.startswith("queued run ") and out.strip().endswith("the service starts it")
    import json

    (run,) = json.loads(docker_cli("runs", "list", "--json").stdout)
    assert (run["status"], run["trigger"], run["job"]) == ("pending", "manual", "later")


def test_runs_logs_follows_a_live_run(make_launcher: Any, docker_cli: Any) -> None:
    launcher = make_launcher()
    spec = job_spec(
        name="ticker", command=["sh", "-c", "for i in 1 2 3 4; do echo tick-$i; sleep 0.5; done"]
    )
    run = launcher.queue(spec, RunTrigger.MANUAL)
    running = threading.Event()
    worker = threading.Thread(
        target=launcher.execute, args=(run, spec), kwargs={"on_running": lambda _: running.set()}
    )
    worker.start()
    assert running.wait(30)
    followed = docker_cli("runs", "logs", str(run.id), "--follow")
    worker.join(30)
    assert followed.stdout == "tick-1\ntick-2\ntick-3\ntick-4\n"
    assert docker_cli("runs", "logs", str(run.id)).stdout == "tick-1\ntick-2\ntick-3\ntick-4\n"


def test_doctor_on_the_host(docker_cli: Any) -> None:
    import json

    report = json.loads(docker_cli("doctor", "--json").stdout)
    assert report["ok"] is True
    assert report["engine"]["api_version"]
    assert report["location"]["in_container"] is False
    assert report["database"]["revision"] == HEAD
    assert report["port_pool"]["size"] == 1000
    text = docker_cli("doctor").stdout
    assert (
        "engine: ok" in text
        and "location: on the host" in text
        and "port pool: 20000-20999" in text
    )


def test_the_example_jobs_run(
    docker_cli: Any, tmp_path: Path, database_url: str, docker_client: Any
) -> None:
    examples = Path(__file__).resolve().parents[3] / "jobs"
    for folder in ("/tmp/orchestrator-demo/reports", "/tmp/orchestrator-demo/config"):
        Path(folder).mkdir(parents=True, exist_ok=True)
    # cache-warmer's named volume: the engine makes it on first use; we remove it if we did.
    volume = "orchestrator-demo-cache"
    existed = any(v.name == volume for v in docker_client.volumes.list())
    try:
        docker_cli("jobs", "apply", str(examples))
        assert "report written" in docker_cli("jobs", "run", "nightly-report").stdout
        assert docker_cli("jobs", "run", "cache-warmer").stdout.strip().isdigit()
        assert "hello from run " in docker_cli("jobs", "run", "hello").stdout
    finally:
        if not existed:
            for found in docker_client.volumes.list(filters={"name": volume}):
                if found.name == volume:
                    found.remove(force=True)
