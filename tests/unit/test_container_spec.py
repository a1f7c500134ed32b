"""A run's container as a pure function of the run, its job and what the launch prepared:
its name, the labels that find it again, the variables the job reads, and secrets that
reach it only along with what masks them in its output."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.engine import JOB_LABEL, LAUNCH_LABEL, MANAGED_LABEL, RUN_LABEL
from orchestrator.engine.contract import ContainerSpec
from orchestrator.hostpaths import MountPlan
from orchestrator.masking import OutputMasker
from orchestrator.records import RunRecord, RunStatus, RunTrigger
from orchestrator.runner.container import container_name, container_spec, port_variable
from orchestrator.runner.secretfiles import LaunchSecrets, load_launch_secrets
from orchestrator.spec import JobSpec, parse_job

RUN = RunRecord(
    id=42,
    job="report",
    trigger=RunTrigger.SCHEDULE,
    attempt=1,
    status=RunStatus.PENDING,
    scheduled_for=datetime(2026, 12, 1, tzinfo=UTC),
    created_at=datetime(2026, 12, 1, tzinfo=UTC),
)
NOTHING = LaunchSecrets(environment={}, files={}, masked=())


def job(**fields: Any) -> JobSpec:
    return parse_job({"name": "report", "schedule": "@daily", "image": "busybox", **fields})


def build(
    spec: JobSpec,
    given: LaunchSecrets = NOTHING,
    ports: dict[str, int] | None = None,
    **options: Any,
) -> ContainerSpec:
    return container_spec(
        RUN,
        spec,
        name=container_name(spec.name, RUN.id, "abc123"),
        image_id="sha256:feed",
        plans=options.pop("plans", ()),
        ports=ports or {},
        given=given,
        launch=options.pop("launch", "launch-1"),
        port_host_ip=options.pop("port_host_ip", "0.0.0.0"),
        **options,
    )


def test_the_container_carries_our_labels_over_the_extra_ones() -> None:
    made = build(
        job(),
        extra_labels=(("team", "data"), (MANAGED_LABEL, "false"), (RUN_LABEL, "999")),
    )
    assert made.labels == {
        "team": "data",
        MANAGED_LABEL: "true",
        JOB_LABEL: "report",
        RUN_LABEL: "42",
        LAUNCH_LABEL: "launch-1",
    }


def test_the_name_holds_the_job_the_run_and_the_token() -> None:
    assert build(job()).name == "orchestrator-report-42-abc123"
    assert container_name("report", 42, "ffffff") != container_name("report", 42, "abc123")


def test_each_port_is_published_on_the_host_ip_and_told_to_the_job() -> None:
    spec = job(ports=["8080", "5353/udp"])
    made = build(spec, ports={"8080/tcp": 20001, "5353/udp": 20002}, port_host_ip="127.0.0.1")
    assert made.ports == {"8080/tcp": ("127.0.0.1", 20001), "5353/udp": ("127.0.0.1", 20002)}
    assert made.environment["ORCHESTRATOR_PORT_8080"] == "20001"
    assert made.environment["ORCHESTRATOR_PORT_5353_UDP"] == "20002"
    assert port_variable("8080/tcp") == "ORCHESTRATOR_PORT_8080"


def test_our_variables_come_last_and_an_env_file_cannot_override_them() -> None:
    given = LaunchSecrets(
        environment={"ORCHESTRATOR_RUN_ID": "1", "ORCHESTRATOR_PORT_80": "1"},
        files={},
        masked=(),
    )
    made = build(job(environment={"MODE": "fast"}), given, ports={"80/tcp": 20080})
    assert made.environment == {
        "ORCHESTRATOR_RUN_ID": "42",
        "ORCHESTRATOR_PORT_80": "20080",
        "MODE": "fast",
        "ORCHESTRATOR_JOB": "report",
    }


def test_the_jobs_environment_goes_over_its_env_file_and_a_secret_over_both() -> None:
    given = LaunchSecrets(
        environment={"MODE": "from-file", "DB_PASSWORD": "s3cret", "KEPT": "k"},
        files={},
        masked=(b"s3cret",),
    )
    spec = job(environment={"MODE": "fast"}, secrets=[{"name": "db", "env": "DB_PASSWORD"}])
    made = build(spec, given)
    assert made.environment["MODE"] == "fast"  # as docker run: -e over --env-file
    assert made.environment["DB_PASSWORD"] == "s3cret"
    assert made.environment["KEPT"] == "k"


def test_every_secret_that_reaches_the_container_is_masked_in_its_output(
    tmp_path: Path,
) -> None:
    (tmp_path / "db").write_text("s3cret-value\n")
    env = tmp_path / "app.env"
    env.write_text("API_TOKEN=tok-123\nMODE=plain\n")
    spec = job(secrets=[{"name": "db", "env": "DB_PASSWORD"}], env_file=str(env))
    given = load_launch_secrets(spec, str(tmp_path))
    made = build(spec, given)
    assert made.environment["DB_PASSWORD"] == "s3cret-value"
    assert made.environment["API_TOKEN"] == "tok-123"
    masker = OutputMasker(given.masked)
    printed = " ".join(f"{key}={value}" for key, value in made.environment.items()).encode()
    shown = masker.feed(printed) + masker.flush()
    assert b"s3cret-value" not in shown and b"tok-123" not in shown
    assert b"MODE=plain" in shown


def test_the_job_and_the_launch_decide_the_rest() -> None:
    plan = MountPlan("bind", "/srv/data", "/data")
    spec = job(
        command=["run", "--fast"],
        entrypoint=["/bin/sh", "-c"],
        working_dir="/work",
        user="1000",
        resources={"memory": "64m", "cpus": 0.5},
        network="backend",
    )
    made = build(spec, plans=[plan])
    assert made.image == "sha256:feed"
    assert list(made.mounts) == [plan]
    assert list(made.command or ()) == ["run", "--fast"]
    assert list(made.entrypoint or ()) == ["/bin/sh", "-c"]
    assert (made.working_dir, made.user, made.network) == ("/work", "1000", "backend")
    assert (made.memory, made.cpus) == (64 * 1024 * 1024, 0.5)
    assert made.merge_output is True
    assert (made.privileged, made.host_network, made.host_pid) == (False, False, False)


def test_the_same_inputs_make_the_same_container() -> None:
    spec = job(ports=["8080"], environment={"A": "1"})
    assert build(spec, ports={"8080/tcp": 20001}) == build(spec, ports={"8080/tcp": 20001})
