"""A chaos soak: three schedulers on one PostgreSQL under faults, checked against the
engine's own event stream and the database.

    .venv/bin/python -m benchmarks.chaos --minutes 2 [--seed N] [--json PATH]

Jobs: one every second; three every 2 s running 3 s (longer than their period) under
`allow`, `forbid` and `replace`; one failing with a retry; one leasing a host port.
Meanwhile, at random moments (one fault at a time, so two schedulers always fire): a
scheduler SIGKILLed and started again, one SIGSTOPped past --adopt-after and resumed,
PostgreSQL restarted, the engine restarted once, and a job container killed from
outside. Then the jobs are disabled, every run drains, and the invariants are checked:
every due fire has exactly one run (or a recorded skip), no run ever had two containers
started, no run is left pending or running, no port lease and no managed container is
left, every run's status matches how its container ended (the engine's `die` events),
and a container killed from outside is recorded failed with 137. Prints the faults
injected and the invariants checked; exit 1 on any violation.

It needs root on a host where it may restart the engine (it starts `dockerd` again as
.ci/run does) and the images local/busybox and local/postgres:15.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import wiring

ROOT = Path(__file__).resolve().parents[1]
JOB_IMAGE = os.environ.get("ORCHESTRATOR_JOB_IMAGE", "local/busybox:latest")
POSTGRES_IMAGE = "local/postgres:15"
LABEL = "orchestrator.chaos"
ADOPT_AFTER = 3

# name -> period in seconds (every job fires on "@every <period>s").
PERIODS = {"tick": 1, "allow": 2, "forbid": 2, "replace": 2, "flaky": 4, "ported": 3}
JOBS = f"""
- {{name: tick, schedule: "@every 1s", image: {JOB_IMAGE}, command: ["true"],
   concurrency: allow}}
- {{name: allow, schedule: "@every 2s", image: {JOB_IMAGE}, command: [sleep, "3"],
   concurrency: allow}}
- {{name: forbid, schedule: "@every 2s", image: {JOB_IMAGE}, command: [sleep, "3"],
   concurrency: forbid}}
- {{name: replace, schedule: "@every 2s", image: {JOB_IMAGE},
   command: [sh, -c, "trap 'exit 143' TERM; sleep 3 & wait"], concurrency: replace}}
- {{name: flaky, schedule: "@every 4s", image: {JOB_IMAGE}, command: [sh, -c, "exit 3"],
   concurrency: allow, retries: {{count: 1, backoff: 1s}}}}
- {{name: ported, schedule: "@every 3s", image: {JOB_IMAGE}, ports: ["8080"],
   command: [sh, -c, "echo $ORCHESTRATOR_PORT_8080; sleep 1"], concurrency: allow}}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def restart_engine() -> None:
    """Stop the local dockerd and start it again as .ci/run starts it. Every dockerd
    found is stopped (one still shutting down from an earlier restart, too), SIGKILLed
    if it has not exited after 60 s."""
    pids = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()
    for signal_name, patience in (("-TERM", 60.0), ("-KILL", 10.0)):
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        if not alive:
            break
        subprocess.run(["kill", signal_name, *alive], check=False)
        deadline = time.monotonic() + patience
        while any(Path(f"/proc/{pid}").exists() for pid in alive) and time.monotonic() < deadline:
            time.sleep(0.2)
    if any(Path(f"/proc/{pid}").exists() for pid in pids):
        raise RuntimeError(f"dockerd ({', '.join(pids)}) did not exit, even after SIGKILL")
    # Left by an unclean stop; dockerd refuses to start with it (as .ci/run does).
    Path("/var/run/docker.pid").unlink(missing_ok=True)
    subprocess.run(  # detached, as .ci/run starts it
        ["sh", "-c", "nohup setsid dockerd >>/var/log/dockerd.log 2>&1 </dev/null &"], check=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if subprocess.run(["docker", "info"], capture_output=True).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError("dockerd did not come back within 60 s")


class Events:
    """The engine's container events for our label, collected live and reconnected
    after an engine restart (from the last event seen, duplicates dropped)."""

    def __init__(self, labels: dict[str, str]) -> None:
        self.selector = [f"{key}={value}" for key, value in labels.items()]
        self.events: list[dict[str, Any]] = []
        self.seen: set[tuple[str, str, int]] = set()
        self.reconnects = 0
        self.stopping = threading.Event()
        self._stream: Any = None
        self._connect(since=None)
        self.thread = threading.Thread(target=self._collect, daemon=True)
        self.thread.start()

    def _connect(self, since: float | None) -> None:
        import docker

        client = docker.from_env(timeout=None)
        self._stream = client.events(
            decode=True,
            since=since,
            filters={"type": "container", "label": self.selector},
        )

    def _collect(self) -> None:
        while not self.stopping.is_set():
            try:
                for event in self._stream:
                    key = (event["Actor"]["ID"], event["Action"], int(event["timeNano"]))
                    if key not in self.seen:
                        self.seen.add(key)
                        self.events.append(event)
            except Exception:  # the engine went away under the stream
                pass
            if self.stopping.is_set():
                return
            last = self.events[-1]["timeNano"] / 1e9 if self.events else None
            while not self.stopping.is_set():
                try:
                    self._connect(since=last)
                    self.reconnects += 1
                    break
                except Exception:
                    time.sleep(0.5)

    def close(self) -> None:
        self.stopping.set()
        with contextlib.suppress(Exception):
            self._stream.close()
        self.thread.join(5)

    def by_run(self, action: str) -> dict[int, list[dict[str, Any]]]:
        found: dict[int, list[dict[str, Any]]] = {}
        for event in self.events:
            run = (event["Actor"].get("Attributes") or {}).get("orchestrator.run", "")
            if event["Action"] == action and run.isdigit():
                found.setdefault(int(run), []).append(event)
        return found


@dataclass
class Soak:
    minutes: float
    seed: int
    workdir: Path
    label: dict[str, str] = field(default_factory=lambda: {LABEL: uuid.uuid4().hex[:12]})
    faults: Counter[str] = field(default_factory=Counter)
    killed_containers: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        import docker

        self.client = docker.from_env(timeout=120)
        self.rng = random.Random(self.seed)
        self.port = free_port()
        self.url = f"postgresql://postgres:chaos@127.0.0.1:{self.port}/postgres"
        ((key, value),) = self.label.items()
        self.env = {
            **os.environ,
            "ORCHESTRATOR_DATABASE_URL": self.url,
            "ORCHESTRATOR_CONTAINER_LABELS": f"{key}={value}",
            "ORCHESTRATOR_LOG_LEVEL": "info",
            "ORCHESTRATOR_PORT_RANGE": "24000-24099",
        }
        self.schedulers: list[subprocess.Popen[bytes] | None] = [None, None, None]
        self.stopped: set[int] = set()

    # --- the parts ---------------------------------------------------------------------

    def cli(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", *args],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def start_postgres(self) -> None:
        self.postgres = self.client.containers.run(
            POSTGRES_IMAGE,
            detach=True,
            environment={"POSTGRES_PASSWORD": "chaos"},
            ports={"5432/tcp": ("127.0.0.1", self.port)},
            labels=self.label,
            restart_policy={"Name": "always"},  # back after the engine restarts
        )
        self.wait_for_postgres()

    def wait_for_postgres(self, seconds: float = 90) -> None:
        import psycopg

        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                psycopg.connect(self.url, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.3)
        raise RuntimeError("PostgreSQL did not come up")

    def start_scheduler(self, index: int) -> None:
        log = (self.workdir / f"scheduler-{index}.log").open("ab")
        self.schedulers[index] = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "serve", "--adopt-after", f"{ADOPT_AFTER}s"],
            env={**self.env, "ORCHESTRATOR_HEALTH_FILE": str(self.workdir / f"h{index}.json")},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def scheduler(self, index: int) -> subprocess.Popen[bytes]:
        process = self.schedulers[index]
        assert process is not None
        return process

    # --- the faults --------------------------------------------------------------------

    def kill_scheduler(self) -> None:
        index = self.rng.randrange(3)
        self.scheduler(index).kill()
        self.scheduler(index).wait(10)
        time.sleep(self.rng.uniform(0.5, 3))
        self.start_scheduler(index)

    def freeze_scheduler(self) -> None:
        index = self.rng.randrange(3)
        self.scheduler(index).send_signal(signal.SIGSTOP)
        self.stopped.add(index)
        time.sleep(ADOPT_AFTER + self.rng.uniform(2, 4))  # past --adopt-after
        self.scheduler(index).send_signal(signal.SIGCONT)
        self.stopped.discard(index)

    def restart_postgres(self) -> None:
        self.postgres.restart(timeout=10)
        self.wait_for_postgres()

    def restart_engine(self) -> None:
        restart_engine()
        self.wait_for_postgres()

    def kill_container(self) -> None:
        ((key, value),) = self.label.items()
        running = self.client.containers.list(
            ignore_removed=True, filters={"label": [f"{key}={value}", "orchestrator.job=allow"]}
        )
        if not running:
            return
        victim = self.rng.choice(running)
        try:
            victim.kill()
        except Exception:  # it ended meanwhile
            return
        self.killed_containers.append(str(victim.id))

    def plan(self) -> list[tuple[float, str]]:
        """(seconds from the start, fault) for the soak, in order."""
        span = self.minutes * 60
        count = max(1.0, self.minutes)
        kinds = (
            ["kill_scheduler"] * int(2 * count)
            + ["freeze_scheduler"] * max(1, int(count / 2))
            + ["restart_postgres"] * max(1, int(count / 3))
            + ["restart_engine"]
            + ["kill_container"] * int(2 * count)
        )
        self.rng.shuffle(kinds)
        step = (span - 25) / len(kinds)
        return [
            (10 + step * i + self.rng.uniform(0, step / 3), kind) for i, kind in enumerate(kinds)
        ]

    # --- the soak ----------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.start_postgres()
        self.cli("db", "upgrade")
        (self.workdir / "jobs.yaml").write_text(JOBS)
        self.cli("jobs", "apply", str(self.workdir / "jobs.yaml"))
        self.events = Events(self.label)
        for index in range(3):
            self.start_scheduler(index)
        began = time.monotonic()
        for at, kind in self.plan():
            time.sleep(max(0.0, at - (time.monotonic() - began)))
            print(f"  {time.monotonic() - began:6.1f}s  {kind}", flush=True)
            getattr(self, kind)()
            self.faults[kind] += 1
        time.sleep(max(0.0, self.minutes * 60 - (time.monotonic() - began)))
        disabled_at = {}
        for name in PERIODS:
            disabled_at[name] = datetime.now(UTC)
            self.cli("jobs", "disable", name)
        drained = self.drain()
        swept = self.sweep_wait()
        for index in range(3):
            self.scheduler(index).send_signal(signal.SIGTERM)
        codes = [self.scheduler(index).wait(60) for index in range(3)]
        time.sleep(1)
        self.events.close()
        result = self.check(disabled_at, drained, codes)
        result["leftovers_swept_seconds"] = round(swept, 1)
        return result

    def drain(self, seconds: float = 600) -> float:
        """Seconds until no run is pending or running any more (or the limit)."""
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            runs = self.runs()
            if not any(run.status.value in ("pending", "running") for run in runs):
                break
            time.sleep(1)
        return time.monotonic() - started

    def sweep_wait(self, seconds: float = 90) -> float:
        """Seconds until no container of ours is left: containers whose follower died
        are removed by the schedulers' sweep, twice --adopt-after (at least 30 s) after
        their run ended (the limit passed, the check names what is left)."""
        ((key, value),) = self.label.items()
        selector = {"label": [f"{key}={value}", "orchestrator.managed=true"]}
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            if not self.client.containers.list(ignore_removed=True, all=True, filters=selector):
                break
            time.sleep(2)
        return time.monotonic() - started

    def runs(self) -> list[Any]:
        with wiring.store_at(self.url) as store:
            return list(reversed(store.runs(limit=None)))

    def leases(self) -> list[Any]:
        with wiring.store_at(self.url) as store:
            return store.leases()

    # --- the invariants ----------------------------------------------------------------

    def check(
        self, disabled_at: dict[str, datetime], drained: float, codes: list[int]
    ) -> dict[str, Any]:
        runs = self.runs()
        violations: list[str] = []
        checked: Counter[str] = Counter()

        # Every due fire has exactly one run (or a recorded skip), from the first due
        # fire to the stop.
        for name, period in PERIODS.items():
            fires = sorted(
                run.scheduled_for
                for run in runs
                if run.job == name and run.attempt == 1 and run.trigger.value != "manual"
            )
            checked["fires"] += len(fires)
            if len(set(fires)) != len(fires):
                violations.append(f"{name}: a fire has more than one run")
            for earlier, later in itertools.pairwise(fires):
                if later - earlier != timedelta(seconds=period):
                    violations.append(f"{name}: no run for the fires between {earlier} and {later}")
            if not fires or disabled_at[name] - fires[-1] > timedelta(seconds=period * 3):
                violations.append(f"{name}: firing stopped before the soak did")

        # No run ever had two containers started.
        started = self.events.by_run("start")
        checked["runs with a container started"] = len(started)
        for run_id, events in started.items():
            containers = {event["Actor"]["ID"] for event in events}
            if len(containers) > 1:
                violations.append(f"run {run_id} had {len(containers)} containers started")

        # Nothing left behind.
        unfinished = [run.id for run in runs if run.status.value in ("pending", "running")]
        checked["runs"] = len(runs)
        if unfinished:
            violations.append(f"runs left pending or running: {unfinished[:20]}")
        leases = self.leases()
        if leases:
            violations.append(f"port leases left: {len(leases)}")
        ((key, value),) = self.label.items()
        left = self.client.containers.list(
            ignore_removed=True,
            all=True,
            filters={"label": [f"{key}={value}", "orchestrator.managed=true"]},
        )
        by_id = {run.container_id: run for run in runs if run.container_id}
        for container in left:
            run = by_id.get(container.id)
            violations.append(
                f"managed container left: {container.short_id} ({container.status}, run "
                f"{container.labels.get('orchestrator.run')} of "
                f"{container.labels.get('orchestrator.job')}, recorded "
                f"{run.status.value if run else 'for no run'})"
            )

        # Every run's status matches how its container ended.
        died = self.events.by_run("die")
        for run in runs:
            if not run.container_id or run.status.value in ("lost", "skipped"):
                continue
            ends = [e for e in died.get(run.id, []) if e["Actor"]["ID"] == run.container_id]
            if not ends:
                checked["statuses not seen in the events (engine restart)"] += 1
                continue
            code = int(ends[-1]["Actor"]["Attributes"].get("exitCode", -1))
            checked["statuses checked against the engine"] += 1
            status = run.status.value
            if (status == "succeeded" and code != 0) or (
                status == "failed" and run.exit_code is not None and run.exit_code != code
            ):
                violations.append(
                    f"run {run.id} ({run.job}) is {status} exit {run.exit_code}, "
                    f"its container exited {code}"
                )
        for container in self.killed_containers:
            # A container may end on its own in the instant the kill comes: the engine's
            # exit code tells whether the kill did it.
            (run,) = [r for r in runs if r.container_id == container] or [None]
            ends = [e for e in self.events.events if e["Actor"]["ID"] == container]
            code = [
                int(e["Actor"]["Attributes"].get("exitCode", -1))
                for e in ends
                if e["Action"] == "die"
            ]
            if code[-1:] != [137]:
                checked["containers killed after they ended"] += 1
                continue
            checked["containers killed from outside"] += 1
            if run is None or (run.status.value, run.exit_code) != ("failed", 137):
                violations.append(
                    f"container {container[:12]} killed from outside is recorded as "
                    f"{run.status.value + ' exit ' + str(run.exit_code) if run else 'no run'}"
                )
        if any(codes):
            violations.append(f"schedulers exited {codes}")
        statuses = Counter(run.status.value for run in runs)
        return {
            "minutes": self.minutes,
            "seed": self.seed,
            "faults": dict(self.faults),
            "fires_checked": checked["fires"],
            "runs": len(runs),
            "statuses": dict(statuses),
            "checked": dict(checked),
            "event_stream_reconnects": self.events.reconnects,
            "drain_seconds": round(drained, 1),
            "violations": violations,
        }

    def cleanup(self) -> None:
        for index, process in enumerate(self.schedulers):
            if process is not None and process.poll() is None:
                if index in self.stopped:
                    process.send_signal(signal.SIGCONT)
                process.kill()
        ((key, value),) = self.label.items()
        for container in self.client.containers.list(
            ignore_removed=True, all=True, filters={"label": f"{key}={value}"}
        ):
            container.remove(force=True)


def soak(minutes: float, seed: int) -> dict[str, Any]:
    """One soak in a scratch folder; the schedulers' log tails printed if it fails."""
    with tempfile.TemporaryDirectory(prefix="chaos-") as folder:
        soaking = Soak(minutes, seed, Path(folder))
        print(f"chaos soak: {minutes} min, seed {seed}", flush=True)
        try:
            result = soaking.run()
        except BaseException:
            for log in sorted(Path(folder).glob("scheduler-*.log")):
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}")
            raise
        finally:
            soaking.cleanup()
        if result["violations"]:
            for log in sorted(Path(folder).glob("scheduler-*.log")):
                print(f"--- {log.name} (tail)\n{log.read_text(errors='replace')[-3000:]}")
    return result


def run(quick: bool) -> dict[str, Any]:
    """A soak of 2 minutes (quick) or 10, with a random seed."""
    return soak(2.0 if quick else 10.0, random.randrange(1 << 30))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__)
    parser.add_argument("--minutes", type=float, default=2)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    options = parser.parse_args(argv)
    seed = options.seed if options.seed is not None else random.randrange(1 << 30)
    result = soak(options.minutes, seed)
    print(f"faults injected: {result['faults']}")
    print(f"fires: {result['fires_checked']}, runs: {result['runs']} {result['statuses']}")
    print(f"invariants checked: {result['checked']}")
    print(
        f"drained in {result['drain_seconds']} s after the jobs were disabled; leftovers "
        f"swept in {result['leftovers_swept_seconds']} s"
    )
    print(f"violations: {len(result['violations'])}")
    for violation in result["violations"]:
        print(f"  {violation}")
    if options.json:
        options.json.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    return 1 if result["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
