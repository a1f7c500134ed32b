"""Jobs that try to reach the host through their mounts, on the real engine: the host's
system parts, a bind-driver volume, a link swapped in while the launch checks, and the
anonymous volumes an image leaves."""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.labels import RUN_LABEL
from orchestrator.records import RunRecord, RunStatus, RunTrigger
from tests.support.engines import JOB_IMAGE

pytestmark = pytest.mark.docker


def run_once(launcher: Any, spec: Any, **callbacks: Any) -> RunRecord:
    run = launcher.queue(spec, RunTrigger.MANUAL)
    result: RunRecord = launcher.execute(run, spec, **callbacks)
    return result


def job(**fields: Any) -> Any:
    from orchestrator.spec import parse_job

    return parse_job({"schedule": "@daily", "image": JOB_IMAGE, **fields})


def containers_of(docker_client: Any, test_label: dict[str, str]) -> list[Any]:
    ((key, value),) = test_label.items()
    return list(docker_client.containers.list(all=True, filters={"label": f"{key}={value}"}))


@pytest.mark.parametrize(
    ("source", "part"),
    [
        ("/etc", "/etc"),
        ("/proc", "/proc"),
        ("/var/lib/docker", "/var/lib/docker"),
        ("/var/lib", "/var/lib/docker"),
        ("/run/systemd", "/run"),
    ],
)
def test_a_job_binding_a_system_part_is_refused_and_nothing_is_created(
    make_launcher: Any, docker_client: Any, test_label: dict[str, str], source: str, part: str
) -> None:
    spec = job(name="grab", volumes=[f"{source}:/h"], command=["ls", "/h"])
    refused = run_once(make_launcher(), spec)
    assert refused.status is RunStatus.FAILED and refused.container_id is None
    (line,) = (refused.error or "").splitlines()
    assert line.startswith(f"job 'grab': volumes: /h: host path {source} ")
    assert part in line and "ORCHESTRATOR_ALLOWED_HOST_PATHS" in line
    assert containers_of(docker_client, test_label) == []


def test_a_system_part_named_exactly_in_the_allow_list_is_mounted(make_launcher: Any) -> None:
    spec = job(name="reads-ssl", volumes=["/etc/ssl:/h:ro"], command=["ls", "/h"])
    for broad in ("/", "/et", "/etc/ssl/certs"):  # a parent, a neighbour, a child: no grant
        refused = run_once(make_launcher(allowed_host_paths=(broad,)), spec)
        assert refused.status is RunStatus.FAILED and refused.container_id is None
    allowed = run_once(make_launcher(allowed_host_paths=("/etc/ssl",)), spec)
    assert allowed.status is RunStatus.SUCCEEDED, allowed.error
    listing = "".join(f"{name}\n" for name in sorted(os.listdir("/etc/ssl")))
    assert allowed.output == listing  # really the host's /etc/ssl


def test_a_bind_driver_volume_to_etc_is_refused(
    make_launcher: Any, docker_client: Any, test_label: dict[str, str]
) -> None:
    name = f"to-etc-{next(iter(test_label.values()))[:12]}"
    docker_client.volumes.create(
        name,
        driver="local",
        driver_opts={"type": "none", "o": "bind", "device": "/etc"},
        labels=test_label,
    )
    spec = job(name="via-volume", volumes=[f"{name}:/h"], command=["ls", "/h"])
    refused = run_once(make_launcher(), spec)
    assert refused.status is RunStatus.FAILED and refused.container_id is None
    assert refused.error == (
        "job 'via-volume': volumes: /h: host path /etc is a part of the host's system that "
        "gives a job control of it: to allow it, name /etc in ORCHESTRATOR_ALLOWED_HOST_PATHS, "
        "which then confines every job's host paths to that list"
    )
    assert containers_of(docker_client, test_label) == []


def test_jobs_validate_refuses_a_system_part_in_one_line(docker_cli: Any, write_jobs: Any) -> None:
    path = write_jobs(
        "cron.yaml", "name: cron\nschedule: '@daily'\nimage: x\nvolumes: ['/etc:/h']\n"
    )
    refused = docker_cli("jobs", "validate", str(path), expect=2)
    (line,) = refused.stderr.strip().splitlines()
    assert "job 'cron': volumes: /etc:/h: host path /etc is a part" in line
    docker_cli.env["ORCHESTRATOR_ALLOWED_HOST_PATHS"] = "/etc"
    docker_cli("jobs", "validate", str(path))


# --- the race: a link swapped in between the check and the engine's mount ----------------


@pytest.fixture
def flipping(tmp_path: Path) -> Iterator[Any]:
    """`flip(harmless, forbidden)`: `tmp_path/ok`, a directory holding MARK, swapped for a
    symbolic link to /etc for `forbidden` seconds, then back for `harmless`, over and
    over, as a job with a volume over tmp_path could do."""
    ok, real = tmp_path / "ok", tmp_path / "ok.real"
    ok.mkdir()
    (ok / "MARK").write_text("harmless\n")
    stop = threading.Event()
    threads = []

    def loop(harmless: float, forbidden: float) -> None:
        while not stop.is_set():
            os.rename(ok, real)
            os.symlink("/etc", ok)
            time.sleep(forbidden)
            os.unlink(ok)
            os.rename(real, ok)
            time.sleep(harmless)

    def flip(harmless: float, forbidden: float) -> Path:
        threads.append(threading.Thread(target=loop, args=(harmless, forbidden), daemon=True))
        threads[-1].start()
        return ok

    yield flip
    stop.set()
    for thread in threads:
        thread.join()


def test_a_link_flipped_during_the_check_never_reaches_the_pin(
    make_launcher: Any, flipping: Any
) -> None:
    """1,000 launches' check-and-pin (what the engine is given to mount) while the link
    flips every few milliseconds: each is refused, or its source is the harmless
    directory, never /etc."""
    from orchestrator.errors import UnsafeJobError
    from orchestrator.runner.mounts import plan_mounts
    from orchestrator.runner.secretfiles import LaunchSecrets

    starter = make_launcher().starter
    assert starter.pinner.enabled  # on the host, as root: the tests run where it pins
    flipped = flipping(0.004, 0.001)
    spec = job(name="racer", volumes=[f"{flipped}:/h"])
    etc = os.stat("/etc")
    pinned = refused = 0
    for _ in range(1000):
        try:
            plans = plan_mounts(
                spec,
                starter.where,
                starter.policy,
                LaunchSecrets({}, {}, ()),
                (1, 41),
                engine_socket=None,
                engine_address="x",
            )
            with starter.pinner.pinned(spec.name, plans) as given:
                seen = os.stat(given[0].source)
                assert (seen.st_dev, seen.st_ino) != (etc.st_dev, etc.st_ino)
                assert os.path.exists(os.path.join(given[0].source, "MARK"))
            pinned += 1
        except UnsafeJobError:
            refused += 1
    assert pinned > 0 and refused > 0, (pinned, refused)  # the flipper really raced
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    assert not [line for line in mounts if str(flipped) in line]  # no pin left


def test_a_job_started_while_the_link_flips_never_sees_etc(
    make_launcher: Any, flipping: Any
) -> None:
    """Real starts: the engine mounts a tenth of a second or so after the check; the
    link flips every 50 ms, so an unpinned source would be /etc at the mount about
    every other time."""
    launcher = make_launcher()
    flipped = flipping(0.05, 0.05)
    spec = job(name="racer", volumes=[f"{flipped}:/h:ro"], command=["ls", "/h"])
    started = 0
    for _ in range(40):  # until 6 containers started (each try: refused, or harmless)
        ran = run_once(launcher, spec)
        if ran.status is RunStatus.SUCCEEDED:
            assert ran.output == "MARK\n"
            started += 1
            if started == 6:
                break
        else:
            assert ran.container_id is None, ran.error
    assert started > 0
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    assert not [line for line in mounts if str(flipped) in line]  # no pin left


# --- anonymous volumes ----------------------------------------------------------------


@pytest.fixture
def image_with_a_volume(docker_client: Any, test_label: dict[str, str]) -> Iterator[str]:
    tag = f"local/with-volume:{next(iter(test_label.values()))[:12]}"
    dockerfile = f"FROM {JOB_IMAGE}\nVOLUME /scratch\n"
    docker_client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag=tag, labels=test_label, rm=True
    )
    yield tag
    docker_client.images.remove(tag, force=True)


def test_an_images_anonymous_volume_goes_with_the_run(
    make_launcher: Any, docker_client: Any, test_label: dict[str, str], image_with_a_volume: str
) -> None:
    import docker.errors

    spec = job(
        name="scratchy", image=image_with_a_volume, command=["sh", "-c", "echo x > /scratch/y"]
    )
    ((key, value),) = test_label.items()
    volumes: list[str] = []

    def note_volumes(run: RunRecord) -> None:
        selector = {"label": [f"{key}={value}", f"{RUN_LABEL}={run.id}"]}
        for container in docker_client.containers.list(all=True, filters=selector):
            volumes.extend(m["Name"] for m in container.attrs["Mounts"] if m["Type"] == "volume")

    try:
        ran = run_once(make_launcher(), spec, on_running=note_volumes)
        assert ran.status is RunStatus.SUCCEEDED, ran.error
        assert len(volumes) == 1, volumes  # the image's VOLUME, made for the run
        with pytest.raises(docker.errors.NotFound):
            docker_client.volumes.get(volumes[0])
    finally:
        for name in volumes:
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.volumes.get(name).remove(force=True)


# --- the scheduler's own volumes and its stack's ----------------------------------------


@pytest.fixture
def scheduler_stand_in(docker_client: Any, test_label: dict[str, str]) -> Iterator[Any]:
    """A container like the scheduler's in a compose stack: its own named volume (made
    outside compose: an external one), and a database volume of its project beside it."""
    project = f"stack{next(iter(test_label.values()))[:10]}"
    compose = {"com.docker.compose.project": project}
    docker_client.volumes.create(f"{project}_state", labels=test_label)
    docker_client.volumes.create(f"{project}_pgdata", labels={**test_label, **compose})
    container = docker_client.containers.run(
        JOB_IMAGE,
        ["sleep", "300"],
        labels={**test_label, **compose},
        volumes={f"{project}_state": {"bind": "/state", "mode": "rw"}},
        detach=True,
    )
    yield container, project
    container.remove(force=True)
    for volume in (f"{project}_state", f"{project}_pgdata"):
        docker_client.volumes.get(volume).remove(force=True)


def test_the_schedulers_own_and_its_databases_volumes_need_a_grant(
    database_url: str, test_label: dict[str, str], scheduler_stand_in: Any
) -> None:
    from orchestrator.engine import DockerEngine
    from orchestrator.runner import LaunchSettings, RunLauncher
    from orchestrator.store.database import Database
    from orchestrator.store.facade import Store

    container, project = scheduler_stand_in
    database, engine = Database(database_url), DockerEngine.from_env()
    try:
        where = engine.inspect_self(container.id, "a stand-in")

        def launcher(*allowed: str) -> RunLauncher:
            settings = LaunchSettings(
                extra_labels=tuple(test_label.items()), allowed_volumes=allowed
            )
            return RunLauncher(Store(database), engine, where, settings)

        for volume, whose in ((f"{project}_state", "own"), (f"{project}_pgdata", "stack")):
            spec = job(name=f"takes-{whose}", volumes=[f"{volume}:/v"], command=["ls", "/v"])
            refused = run_once(launcher(), spec)
            assert refused.status is RunStatus.FAILED and refused.container_id is None
            assert refused.error and refused.error.endswith(
                f"name {volume} in ORCHESTRATOR_ALLOWED_VOLUMES"
            )
            granted = run_once(launcher(volume), spec)
            assert granted.status is RunStatus.SUCCEEDED, granted.error
        narrowed = run_once(launcher("other"), job(name="cache", volumes=["cache-x:/c"]))
        assert narrowed.error and "not in ORCHESTRATOR_ALLOWED_VOLUMES (other)" in narrowed.error
    finally:
        database.dispose()
        engine.close()
