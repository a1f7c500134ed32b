"""Jobs from container labels on the fake engine and SQLite: live discovery through the
event stream, the label policy as an attacker who can only set labels meets it, clashes,
and the stored jobs that edits cannot change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.engine.fake import FakeEngine
from orchestrator.errors import RefusedError
from orchestrator.records import JobRecord
from orchestrator.service.label_jobs import LabelDiscovery, LabelSettings
from orchestrator.spec import LoadedJob, parse_job
from orchestrator.store import migrations
from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from tests.acceptance.service.conftest import wait_for

JOB = "orchestrator.job.backup."
BASE = {JOB + "schedule": "@daily", JOB + "image": "busybox", JOB + "command": "echo hi"}


@pytest.fixture
def store(tmp_path: Path) -> Store:
    database = Database(f"sqlite:///{tmp_path / 'labels.db'}")
    migrations.upgrade(database)
    return Store(database)


@pytest.fixture
def live(store: Store) -> Iterator[tuple[FakeEngine, LabelDiscovery]]:
    engine = FakeEngine()
    discovery = LabelDiscovery(store, engine, LabelSettings())
    discovery.reconcile()
    discovery.start()
    yield engine, discovery
    discovery.stop()


def jobs(store: Store) -> dict[str, JobRecord]:
    return {job.name: job for job in store.jobs()}


def test_a_job_comes_with_its_container_is_disabled_while_it_stops_and_leaves_with_it(
    store: Store, live: tuple[FakeEngine, LabelDiscovery]
) -> None:
    engine, _ = live
    started = time.monotonic()
    engine.run_container("web-1", BASE)
    wait_for(lambda: "backup" in jobs(store), 2, "the label job stored")
    latency = time.monotonic() - started
    job = jobs(store)["backup"]
    assert job.source == "label:web-1" and job.enabled and latency < 2
    engine.set_running("web-1", False)
    wait_for(lambda: not jobs(store)["backup"].enabled, 2, "the job disabled")
    engine.set_running("web-1", True)
    wait_for(lambda: jobs(store)["backup"].enabled, 2, "the job enabled again")
    engine.rename_container("web-1", "web-2")
    wait_for(lambda: jobs(store)["backup"].source == "label:web-2", 2, "the source renamed")
    engine.remove_container("web-2")
    wait_for(lambda: "backup" not in jobs(store), 2, "the job gone with its container")


def test_a_look_that_finds_nothing_new_writes_nothing(store: Store) -> None:
    """Several schedulers reconcile the same containers: none may bump a revision."""
    engine = FakeEngine()
    engine.run_container("web-1", BASE)
    first = LabelDiscovery(store, engine, LabelSettings())
    second = LabelDiscovery(store, engine, LabelSettings())
    assert first.reconcile().created == ["backup"]
    revision = jobs(store)["backup"].revision
    assert not second.reconcile().changed and not first.reconcile().changed
    assert jobs(store)["backup"].revision == revision


def test_replicas_of_one_compose_service_make_one_job_run_in_one_of_them(store: Store) -> None:
    engine = FakeEngine()
    service = {"com.docker.compose.project": "shop", "com.docker.compose.service": "db"}
    labels = {**service, **BASE}
    for replica in ("shop-db-1", "shop-db-2", "shop-db-3"):
        engine.run_container(replica, labels)
    LabelDiscovery(store, engine, LabelSettings()).reconcile()
    assert [(j.name, j.source) for j in jobs(store).values()] == [("backup", "label:shop-db")]


@pytest.mark.parametrize(
    ("label", "value", "key"),
    [
        ("privileged", "true", "privileged"),
        ("docker_socket", "true", "docker_socket"),
        ("host_network", "true", "host_network"),
        ("host_pid", "true", "host_pid"),
        ("network", "host", "network"),
        ("volumes", '["/etc:/host-etc"]', "volumes"),
        ("volumes", '["shop_secrets:/data"]', "volumes"),
        ("network", "other_stack", "network"),
        ("secrets", '["db_password"]', "secrets"),
        ("env_file", "/run/secrets/env", "env_file"),
        ("ports", '["80:80"]', "ports"),
        ("on_success", '["trusted-file-job"]', "on_success"),
    ],
)
def test_labels_cannot_grant_what_the_operator_did_not(
    store: Store, label: str, value: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = FakeEngine()
    evil = {"orchestrator.job.evil." + k.removeprefix(JOB): v for k, v in BASE.items()}
    engine.run_container("web-1", {**BASE, **evil, "orchestrator.job.evil." + label: value})
    LabelDiscovery(store, engine, LabelSettings()).reconcile()
    assert sorted(jobs(store)) == ["backup"]  # the container's other job still loads
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 1
    assert "container 'web-1': job 'evil'" in refused[0] and f"{key}" in refused[0]


def test_a_run_label_job_joins_its_own_containers_network_not_ours(store: Store) -> None:
    engine = FakeEngine()
    engine.run_container("web-1", BASE, networks=("shop_default",))
    LabelDiscovery(store, engine, LabelSettings()).reconcile()
    assert jobs(store)["backup"].spec.network == "shop_default"


def test_trusted_labels_may_ask_for_what_a_job_file_may(store: Store) -> None:
    engine = FakeEngine()
    engine.run_container("web-1", {**BASE, JOB + "volumes": '["/srv/data:/data"]'})
    LabelDiscovery(store, engine, LabelSettings(mode="trusted")).reconcile()
    assert jobs(store)["backup"].spec.volumes[0].source == "/srv/data"


def test_a_name_clash_is_refused_for_the_newcomer_naming_both(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    file_job = parse_job({"name": "backup", "schedule": "@hourly", "image": "alpine"})
    store.apply_jobs([LoadedJob(file_job, "jobs/backup.yaml")])
    engine = FakeEngine()
    engine.run_container("web-1", BASE)
    discovery = LabelDiscovery(store, engine, LabelSettings())
    assert discovery.reconcile().clashes == [("backup", "label:web-1", "jobs/backup.yaml")]
    assert jobs(store)["backup"].source == "jobs/backup.yaml"
    assert any(
        "label:web-1" in r.getMessage() and "jobs/backup.yaml" in r.getMessage()
        for r in caplog.records
    )
    other = {"orchestrator.job.nightly." + k.removeprefix(JOB): v for k, v in BASE.items()}
    engine.run_container("older", other)
    discovery.reconcile()
    engine.run_container("newer", other)
    assert discovery.reconcile().clashes[-1] == ("nightly", "label:newer", "label:older")
    assert jobs(store)["nightly"].source == "label:older"


def test_label_jobs_cannot_be_changed_by_apply_delete_or_disable(store: Store) -> None:
    engine = FakeEngine()
    engine.run_container("web-1", BASE)
    LabelDiscovery(store, engine, LabelSettings()).reconcile()
    edit = parse_job({"name": "backup", "schedule": "@hourly", "image": "alpine"})
    with pytest.raises(RefusedError, match=r"comes from container labels \(label:web-1\)"):
        store.apply_jobs([LoadedJob(edit, "jobs/x.yaml")])
    with pytest.raises(RefusedError, match="cannot be deleted"):
        store.delete_job("backup")
    with pytest.raises(RefusedError, match="cannot be disabled"):
        store.set_job_enabled("backup", False)
    other = parse_job({"name": "other", "schedule": "@hourly", "image": "alpine"})
    store.apply_jobs([LoadedJob(other, "jobs/x.yaml")], prune=True)
    assert sorted(jobs(store)) == ["backup", "other"]  # a prune leaves label jobs alone


def test_a_label_filter_scopes_the_scheduler_and_leaves_other_stacks_jobs(store: Store) -> None:
    engine = FakeEngine()
    shop = {"com.docker.compose.project": "shop", "com.docker.compose.service": "web"}
    blog = {"com.docker.compose.project": "blog", "com.docker.compose.service": "web"}
    nightly = {"orchestrator.job.nightly." + k.removeprefix(JOB): v for k, v in BASE.items()}
    engine.run_container("shop-web-1", {**shop, **BASE})
    engine.run_container("blog-web-1", {**blog, **nightly})
    LabelDiscovery(store, engine, LabelSettings()).reconcile()  # an unscoped scheduler
    scoped = LabelDiscovery(
        store, engine, LabelSettings(filter={"com.docker.compose.project": "shop"})
    )
    assert not scoped.reconcile().deleted  # blog's job is not its to delete
    engine.remove_container("blog-web-1")
    assert scoped.reconcile().deleted == ["nightly"]


def test_a_container_restarting_in_a_loop_leaks_no_job(
    store: Store, live: tuple[FakeEngine, LabelDiscovery]
) -> None:
    engine, _ = live
    engine.run_container("flappy", BASE)
    for _ in range(30):
        engine.set_running("flappy", False)
        engine.set_running("flappy", True)
    wait_for(lambda: jobs(store).get("backup") is not None, 2, "the job")
    engine.remove_container("flappy")
    wait_for(lambda: not jobs(store), 2, "no job left")


EXEC = {JOB + "schedule": "@daily", JOB + "kind": "exec", JOB + "command": "pg_dump"}


def test_an_exec_label_job_runs_in_its_own_container_or_its_services_replicas(
    store: Store,
) -> None:
    engine = FakeEngine()
    engine.run_container("web-1", EXEC)
    service = {"com.docker.compose.project": "shop", "com.docker.compose.service": "db"}
    nightly = {"orchestrator.job.nightly." + k.removeprefix(JOB): v for k, v in EXEC.items()}
    engine.run_container("shop-db-1", {**service, **nightly})
    engine.run_container("shop-db-2", {**service, **nightly})
    LabelDiscovery(store, engine, LabelSettings()).reconcile()
    found = jobs(store)
    assert found["backup"].spec.container == "web-1"
    assert dict(found["nightly"].spec.selector) == service
    assert found["nightly"].source == "label:shop-db"


@pytest.mark.parametrize(
    ("label", "value", "key"),
    [
        ("container", "orchestrator-scheduler", "container"),
        ("selector", '{"com.docker.compose.service": "db"}', "selector"),
    ],
)
def test_an_exec_label_job_cannot_exec_into_another_container(
    store: Store, label: str, value: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = FakeEngine()
    engine.run_container("web-1", {**EXEC, JOB + label: value})
    LabelDiscovery(store, engine, LabelSettings()).reconcile()
    assert jobs(store) == {}
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == [
        f"label job refused: container 'web-1': job 'backup': {key}: a label job may not "
        "have an exec into another container (ORCHESTRATOR_LABEL_JOBS=trusted allows it)"
    ]
