"""Jobs from container labels with `orchestrator serve` on the real engine: a labelled
container's job is stored within 2 s of `docker run`, fires, is disabled by `docker stop`
and leaves (its runs kept) with `docker rm`; a privileged label job is refused."""

from __future__ import annotations

import itertools
import subprocess
import time
from typing import Any

from orchestrator.store.database import Database
from orchestrator.store.facade import Store
from orchestrator.store.runs import RunRepository
from tests.acceptance.service.conftest import all_runs, wait_for

IMAGE = "local/busybox:latest"


def _docker(*args: str) -> str:
    done = subprocess.run(["docker", *args], check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_a_labelled_container_brings_its_job_live_and_takes_it_away(
    start_service: Any, database: Database, test_label: dict[str, str]
) -> None:
    ((key, value),) = test_label.items()
    service = start_service(
        env={"ORCHESTRATOR_LABEL_JOBS": "on", "ORCHESTRATOR_LABEL_FILTER": f"{key}={value}"}
    )
    store = Store(database)
    wait_for(lambda: "started with" in service.output(), 60, "the service up")
    name = f"labelled-{value[:8]}"
    job = "orchestrator.job.tick-" + value[:8]
    evil = "orchestrator.job.evil-" + value[:8]
    started = time.monotonic()
    _docker(
        "run", "-d", "--name", name, "--label", f"{key}={value}",
        "--label", f"{job}.schedule=@every 1s", "--label", f"{job}.image={IMAGE}",
        "--label", f'{job}.command=["echo", "tick"]', "--label", f"{job}.concurrency=allow",
        "--label", f"{evil}.schedule=@daily", "--label", f"{evil}.image={IMAGE}",
        "--label", f"{evil}.privileged=true",
        IMAGE, "sleep", "300",
    )  # fmt: skip
    tick = "tick-" + value[:8]
    wait_for(lambda: tick in {j.name for j in store.jobs()}, 2, "the label job stored")
    latency = time.monotonic() - started
    print(f"discovery latency (docker run returned -> job stored): {latency:.2f}s")
    assert store.job(tick).source == f"label:{name}"
    wait_for(lambda: [r for r in all_runs(database, tick) if r.status.finished], 20, "a run")
    assert f"container {name!r}: job 'evil-{value[:8]}': privileged" in service.output()
    assert "evil-" + value[:8] not in {j.name for j in store.jobs()}
    _docker("stop", "-t", "0", name)
    wait_for(lambda: not store.job(tick).enabled, 5, "the job disabled")
    _docker("rm", name)
    wait_for(lambda: tick not in {j.name for j in store.jobs()}, 5, "the job gone")
    assert all_runs(database, tick)  # its history stays


def test_our_sigkill_while_label_jobs_fire_loses_and_doubles_no_fire(
    start_service: Any, database: Database, test_label: dict[str, str]
) -> None:
    """The label job is stored, so the next life reconciles it unchanged (same row,
    same revision) and catches up the fires it missed, each once."""
    ((key, value),) = test_label.items()
    env = {"ORCHESTRATOR_LABEL_JOBS": "on", "ORCHESTRATOR_LABEL_FILTER": f"{key}={value}"}
    first = start_service(env=env)
    store = Store(database)
    job = "orchestrator.job.beat-" + value[:8]
    beat = "beat-" + value[:8]
    _docker(
        "run", "-d", "--name", f"beating-{value[:8]}", "--label", f"{key}={value}",
        "--label", f"{job}.schedule=@every 1s", "--label", f"{job}.image={IMAGE}",
        "--label", f'{job}.command=["true"]', "--label", f"{job}.concurrency=allow",
        "--label", f'{job}.catchup={{"policy": "all"}}',
        IMAGE, "sleep", "300",
    )  # fmt: skip
    wait_for(lambda: len(all_runs(database, beat)) >= 3, 30, "fires before the kill")
    revision = store.job(beat).revision
    first.kill()
    time.sleep(3)  # fires missed while no scheduler runs
    second = start_service(env=env)
    wait_for(lambda: len(all_runs(database, beat)) >= 10, 40, "fires after the restart")
    assert second.terminate() == 0
    assert store.job(beat).revision == revision  # reconciled, not made again
    moments = sorted(r.scheduled_for for r in all_runs(database, beat))
    assert len(moments) == len(set(moments))  # no fire doubled
    gaps = [b - a for a, b in itertools.pairwise(moments)]
    assert max(gaps).total_seconds() <= 1.0  # none lost: the missed ones caught up


def test_a_container_with_ofelia_labels_gets_its_exec_job_with_ofelias_meanings(
    start_service: Any, database: Database, test_label: dict[str, str]
) -> None:
    """An Ofelia user's compose labels, unchanged: `ofelia.enabled`, a `job-exec` with
    Ofelia's `@every` and its environment, run inside the labelled container, named by
    the container as Ofelia's scoping does; a `job-local` (a host command) is refused."""
    ((key, value),) = test_label.items()
    service = start_service(
        env={
            "ORCHESTRATOR_LABEL_JOBS": "on",
            "ORCHESTRATOR_LABEL_FILTER": f"{key}={value}",
            "ORCHESTRATOR_LABEL_PREFIXES": "orchestrator,ofelia",
        }
    )
    wait_for(lambda: "started with" in service.output(), 60, "the service up")
    name = f"ofelian-{value[:8]}"
    _docker(
        "run", "-d", "--name", name, "--label", f"{key}={value}",
        "--label", "ofelia.enabled=true",
        "--label", "ofelia.job-exec.greet.schedule=@every 2s",
        "--label", 'ofelia.job-exec.greet.command=sh -c "echo $GREETING from $(hostname)"',
        "--label", "ofelia.job-exec.greet.environment=GREETING=hello",
        "--label", "ofelia.job-local.host.schedule=@daily",
        "--label", "ofelia.job-local.host.command=touch /tmp/pwned",
        "--hostname", "inside-target",
        IMAGE, "sleep", "300",
    )  # fmt: skip
    job = f"{name}.greet"
    store = Store(database)
    wait_for(lambda: job in {j.name for j in store.jobs()}, 5, "the Ofelia job stored")
    assert store.job(job).source == f"label:{name}"
    wait_for(
        lambda: [r for r in all_runs(database, job) if r.status.finished], 30, "a finished run"
    )
    run = next(r for r in all_runs(database, job) if r.status.finished)
    assert (run.status.value, run.exit_code) == ("succeeded", 0), run
    with database.session() as session:
        output = RunRepository(session).get(run.id).output
    assert output == "hello from inside-target\n", output  # in the labelled container
    assert "job-local" in service.output()  # refused, with a line saying so
    assert not any(j.name.rpartition(".")[2] == "host" for j in store.jobs())
