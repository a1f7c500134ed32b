"""The Ofelia and deck-chores translators against the examples of their own documentation.

Sources: github.com/mcuadros/ofelia README.md and docs/jobs.md (commit ebd2b12), and
github.com/funkyfuture/deck-chores docs/usage.rst, deck_chores/parsers.py and utils.py.
Fire times are checked against what the other tool's scheduler computes (robfig/cron,
APScheduler 3, which is installed here) by brute force.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from orchestrator.schedule import next_fire_times, parse_schedule
from orchestrator.spec import parse_job
from orchestrator.spec.dropin import (
    translate_compose,
    translate_deck_chores_labels,
    translate_ofelia_ini,
    translate_ofelia_labels,
)
from orchestrator.spec.dropin.common import Refused, normalise_name
from orchestrator.spec.dropin.schedules import (
    deck_chores_cron,
    deck_chores_date,
    deck_chores_interval,
    ofelia_schedule,
)

# README.md, "INI-style config", and docs/jobs.md's INI examples.
OFELIA_INI = """
[job-exec "job-executed-on-running-container"]
schedule = @hourly
container = my-container
command = touch /tmp/example

[job-run "job-executed-on-new-container"]
schedule = @hourly
image = ubuntu:latest
command = touch /tmp/example

[job-local "job-executed-on-current-host"]
schedule = @hourly
command = touch /tmp/example

[job-service-run "service-executed-on-new-container"]
schedule = 0,20,40 * * * *
image = ubuntu
network = swarm_network
command =  touch /tmp/example

[job-exec "flush-nginx-logs"]
schedule = @hourly
container = nginx-proxy
command = /bin/bash /flush-logs.sh
user = www-data
tty = false

[job-run "print-write-date"]
schedule = @every 5s
image = alpine:latest
command = sh -c 'date | tee -a /tmp/test/date'
volume = /tmp/test:/tmp/test:rw
environment = FOO=bar
environment = BAZ=qux
"""


def _jobs(translation):  # type: ignore[no-untyped-def]
    return {job.name: job.mapping for job in translation.jobs}


def test_the_ofelia_readme_ini_becomes_our_jobs_and_job_local_is_refused() -> None:
    translation = translate_ofelia_ini(OFELIA_INI)
    jobs = _jobs(translation)
    for mapping in jobs.values():
        parse_job(mapping)  # every job is valid for us
    assert jobs["job-executed-on-running-container"]["kind"] == "exec"
    assert jobs["job-executed-on-running-container"]["container"] == "my-container"
    assert jobs["flush-nginx-logs"]["user"] == "www-data"
    # Ofelia runs as root unless told otherwise, and lets runs overlap unless no-overlap.
    assert jobs["job-executed-on-new-container"]["user"] == "root"
    assert all(mapping["concurrency"] == "allow" for mapping in jobs.values())
    date = jobs["print-write-date"]
    assert date["command"] == ["sh", "-c", "date | tee -a /tmp/test/date"]
    assert date["environment"] == {"FOO": "bar", "BAZ": "qux"}
    assert date["volumes"] == ["/tmp/test:/tmp/test:rw"]
    assert date["schedule"] == "@every 5s"
    assert "job-executed-on-current-host" not in jobs
    assert any(
        'job-local "job-executed-on-current-host": refused: job-local runs commands on the '
        "scheduler's host" in line
        for line in translation.dropped
    )


def test_ofelia_options_carry_their_meaning() -> None:
    translation = translate_ofelia_ini(
        """
[job-exec "Backup DB"]
schedule = 0 30 2 * * *
container = db
command = pg_dump
no-overlap = true
max-runtime = 1h30m
history-limit = 20
on-success = Notify Me
on-failure = ["cleanup"]
depends-on = other
hostname = nope

[job-run "Notify Me"]
schedule = @triggered
image = busybox
delete = false
pull = false
"""
    )
    jobs = _jobs(translation)
    backup = jobs["backup-db"]
    assert "Backup DB" in backup["description"]
    assert backup["schedule"] == "30 2 * * *"
    assert backup["concurrency"] == "forbid"
    assert backup["timeout"] == "1h30m"
    assert backup["history"] == {"keep": 20}
    assert backup["on_success"] == ["notify-me"] and backup["on_failure"] == ["cleanup"]
    assert jobs["notify-me"]["schedule"] == "@manual"
    assert jobs["notify-me"]["pull"] == "missing"
    dropped = "\n".join(translation.dropped)
    for option in ("depends-on", "hostname", "delete"):
        assert f"{option} dropped" in dropped, option


def test_ofelia_labels_scope_exec_jobs_by_container() -> None:
    # README.md, "Docker labels configurations": the nginx service of the compose example.
    labels = {
        "ofelia.enabled": "true",
        "ofelia.job-exec.datecron.schedule": "@every 5s",
        "ofelia.job-exec.datecron.command": "uname -a",
    }
    one = translate_ofelia_labels("shop-nginx-1", labels)
    two = translate_ofelia_labels("blog-nginx-1", labels)
    (first,), (second,) = one.jobs, two.jobs
    assert first.name == "shop-nginx-1.datecron" and second.name == "blog-nginx-1.datecron"
    assert first.original == "datecron"
    assert first.mapping["container"] == "shop-nginx-1"
    parse_job(first.mapping)
    assert translate_ofelia_labels("x", {**labels, "ofelia.enabled": "false"}).jobs == []


def test_ofelia_job_run_labels_are_read_only_from_a_service_container() -> None:
    # docs/jobs.md, job-run "Docker labels example" (on the ofelia container itself).
    labels = {
        "ofelia.enabled": "true",
        "ofelia.job-run.print-write-date.schedule": "@every 5s",
        "ofelia.job-run.print-write-date.image": "alpine:latest",
        "ofelia.job-run.print-write-date.environment": '["FOO=bar", "BAZ=qux"]',
        "ofelia.job-run.print-write-date.command": "sh -c 'date | tee -a /tmp/test/date'",
        "ofelia.job-local.my-test-job.schedule": "@every 5s",
        "ofelia.job-local.my-test-job.command": "date",
    }
    plain = translate_ofelia_labels("web", labels)
    assert plain.jobs == []
    service = translate_ofelia_labels("ofelia", {**labels, "ofelia.service": "true"})
    (job,) = service.jobs
    assert job.name == "print-write-date"
    assert job.mapping["environment"] == {"FOO": "bar", "BAZ": "qux"}
    assert any("job-local" in line and "refused" in line for line in service.dropped)


def _robfig_fires(fields: list[str], start: datetime, count: int) -> list[datetime]:
    """robfig/cron's meaning, brute force: seconds first, dom/dow OR when both are
    restricted, `*/n` counting as restricted, `N/step` as N-max/step."""

    def matcher(text: str, low: int, high: int) -> tuple[set[int], bool]:
        values: set[int] = set()
        star = False
        for item in text.split(","):
            value, _, step_text = item.partition("/")
            step = int(step_text or 1)
            if value in ("*", "?"):
                start_, end = low, high
                star = star or step == 1
            elif "-" in value:
                start_, end = (int(x) for x in value.split("-"))
            else:
                start_ = int(value)
                end = high if step_text else start_
            values.update(range(start_, end + 1, step))
        return values, star

    bounds = [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]
    sets = [matcher(text, *bound) for text, bound in zip(fields, bounds, strict=True)]
    fires: list[datetime] = []
    moment = start.replace(second=0, microsecond=0)
    while len(fires) < count:  # minute by minute, then the seconds of a matching minute
        dom = moment.day in sets[3][0]
        dow = (moment.isoweekday() % 7) in sets[5][0]
        day = (dom and dow) if (sets[3][1] or sets[5][1]) else (dom or dow)
        if (
            moment.minute in sets[1][0]
            and moment.hour in sets[2][0]
            and moment.month in sets[4][0]
            and day
        ):
            seconds = sorted(sets[0][0])
            fires.extend(
                moment.replace(second=s) for s in seconds if moment.replace(second=s) > start
            )
        moment += timedelta(minutes=1)
    fires = fires[:count]
    return fires


@pytest.mark.parametrize(
    "line",
    [
        "0 0 1 * * *",  # docs/jobs.md: every night at 1 AM (seconds first)
        "0,20,40 * * * *",  # docs/jobs.md job-service-run example
        "*/20 5/7 * * * *",  # N/step is N-max/step for robfig
        "0 0 12 */2 * 1",  # */2 restricts day of month: EITHER day matches
        "0 0 12 13 * ?",
    ],
)
def test_ofelia_cron_lines_fire_when_robfig_would(line: str) -> None:
    ours, _ = ofelia_schedule(line)
    fields = line.split()
    fields = ["0", *fields] if len(fields) == 5 else fields
    start = datetime(2026, 3, 1, tzinfo=UTC)
    count = 6 if fields[0] == "*/20" else 3
    schedule = parse_schedule(ours)
    assert next_fire_times(schedule, start, count) == _robfig_fires(fields, start, count)


def test_ofelia_schedules_we_translate_or_refuse() -> None:
    assert ofelia_schedule("@every 1.5h") == ("@every 1h30m", None)
    assert ofelia_schedule("@every 300ms") == ("@every 1s", None)  # robfig: at least 1 s
    assert ofelia_schedule("CRON_TZ=Europe/Berlin 0 3 * * *") == ("0 3 * * *", "Europe/Berlin")
    assert ofelia_schedule("@none") == ("@manual", None)
    with pytest.raises(Refused, match="robfig/cron takes 5"):
        ofelia_schedule("1 2 3 4 5 6 7")
    with pytest.raises(Refused, match="not a Go duration"):
        ofelia_schedule("@every 1 day")


# docs/usage.rst, "cron" examples: each pair with the meaning the comment gives.
DECK_CHORES_CRON = [
    ("* * * * * */3 0 0", "0 */3 * * *"),
    ("*/3 0 0", "0 */3 * * *"),
    ("* * * * 6 1 0 0", "0 1 * * 7"),
    ("6 1 0 0", "0 1 * * 7"),
    ("sun 1 0 0", "0 1 * * 7"),
    ("* * * * * 1-4 0 0", "0 1-4 * * *"),
    ("1-4 0 0", "0 1-4 * * *"),
    ("0-4 8 30 15", "15 30 8 * * 1,2,3,4,5"),
    ("*/2 12 0 0", "0 12 * * 1,3,5,7"),
]


@pytest.mark.parametrize(("given", "expected"), DECK_CHORES_CRON)
def test_deck_chores_cron_fires_when_apscheduler_would(given: str, expected: str) -> None:
    ours = deck_chores_cron(given, "Europe/Berlin")
    assert ours == expected
    tokens = given.split()
    args = ["*"] * (8 - len(tokens)) + tokens
    zone = ZoneInfo("Europe/Berlin")
    trigger = CronTrigger(*args, timezone=zone)
    start = datetime(2026, 3, 26, tzinfo=UTC)  # across the spring change on March 29
    theirs, previous, moment = [], None, start
    for _ in range(8):
        fire = trigger.get_next_fire_time(previous, moment)
        theirs.append(fire.astimezone(UTC))
        previous, moment = fire, fire + timedelta(seconds=1)
    schedule = parse_schedule(ours, "Europe/Berlin")
    assert next_fire_times(schedule, start - timedelta(seconds=1), 8) == theirs


def test_deck_chores_cron_lines_we_refuse_say_why() -> None:
    with pytest.raises(Refused, match="names a year"):
        deck_chores_cron("2027 * * * * 0 0 0", "UTC")
    with pytest.raises(Refused, match="week of the year"):
        deck_chores_cron("* * 10 * 0 0 0", "UTC")
    with pytest.raises(Refused, match="BOTH"):
        deck_chores_cron("* 13 * fri 0 0 0", "UTC")
    with pytest.raises(Refused, match="last"):
        deck_chores_cron("last * 0 0 0", "UTC")


@pytest.mark.parametrize(
    ("given", "expected"),
    [  # docs/usage.rst, "interval" examples and shortcuts
        ("28 Days", "@every 28d"),
        ("4 wookies", "@every 28d"),
        ("42s 0.5d", "@every 12h42s"),
        ("42:00:00", "@every 1d18h"),
        ("100/00:00:00", "@every 100d"),
        ("weekly", "@every 7d"),
        ("daily", "@every 1d"),
        ("hourly", "@every 1h"),
        ("every minute", "@every 1m"),
        ("every second", "@every 1s"),
        ("1 hour 30 minutes", "@every 1h30m"),
        ("every 2 days", "@every 2d"),
    ],
)
def test_deck_chores_intervals(given: str, expected: str) -> None:
    assert deck_chores_interval(given) == expected


def test_deck_chores_labels_from_its_docs() -> None:
    # docs/usage.rst, "Job definitions": the web service's labels.
    labels = {
        "deck-chores.clear-caches.command": "drush cc all",
        "deck-chores.clear-caches.interval": "daily",
        "deck-chores.clear-caches.user": "www-data",
        "deck-chores.clear-caches.env.ENVIRONMENT": "production",
        "deck-chores.once.command": "true",
        "deck-chores.once.date": "2027-01-31 03:00:00",
        "deck-chores.once.timezone": "Europe/Berlin",
        "deck-chores.broken.command": "x",
        "com.docker.compose.project": "site",
        "com.docker.compose.service": "web",
    }
    translation = translate_deck_chores_labels("site-web-1", labels)
    jobs = _jobs(translation)
    clear = jobs["site.web.clear-caches"]
    assert clear["command"] == ["drush", "cc", "all"]
    assert clear["schedule"] == "@every 1d" and clear["user"] == "www-data"
    assert clear["environment"] == {"ENVIRONMENT": "production"}
    assert clear["concurrency"] == "forbid"  # max defaults to 1
    # the service flag (on by default): one job for the service, run in one replica
    assert clear["selector"] == {
        "com.docker.compose.project": "site",
        "com.docker.compose.service": "web",
    }
    assert clear["pick"] == "one"
    assert jobs["site.web.once"]["at"] == "2027-01-31T03:00:00+01:00"
    assert any('"broken"' in line and "exactly one of cron" in line for line in translation.dropped)
    noservice = translate_deck_chores_labels(
        "site-web-1", {**labels, "deck-chores.options.flags": "noservice"}
    )
    assert _jobs(noservice)["site-web-1.clear-caches"]["container"] == "site-web-1"


def test_deck_chores_compose_file() -> None:
    # docs/usage.rst, "Containers without an enduring main process".
    compose = """
services:
  neverending:
    image: busybox
    command: tail -f /dev/null
    labels:
      deck-chores.daily-job.command: daily_command
      deck-chores.daily-job.interval: daily
      deck-chores.options.user: nobody
"""
    translation = translate_compose(compose, "proj")
    (job,) = translation.jobs
    assert job.name == "neverending.daily-job"
    assert job.mapping["user"] == "nobody"
    assert job.mapping["selector"]["com.docker.compose.project"] == "proj"


def test_deck_chores_date_keeps_the_wall_time_of_its_zone() -> None:
    assert deck_chores_date("2027-07-01", "Europe/Berlin") == "2027-07-01T00:00:00+02:00"
    with pytest.raises(Refused, match="YYYY-MM-DD"):
        deck_chores_date("tomorrow", "UTC")


def test_names_not_valid_here_are_normalised_apart() -> None:
    assert normalise_name("Backup DB!") == "backup-db"
    long_a, long_b = "x" * 70 + "a", "x" * 70 + "b"
    assert normalise_name(long_a) != normalise_name(long_b)
    assert len(normalise_name(long_a)) <= 63


def test_label_reader_shape_carries_refusals_and_dropped_options() -> None:
    from orchestrator.spec.dropin.labels import read_labels

    labels = {
        "ofelia.enabled": "true",
        "ofelia.job-exec.flush.schedule": "@hourly",
        "ofelia.job-exec.flush.command": "/bin/bash /flush-logs.sh",
        "ofelia.job-exec.flush.tty": "true",
        "ofelia.job-exec.broken.schedule": "0 0 0 0 0 0 0",
        "ofelia.job-exec.broken.command": "x",
    }
    jobs = {
        name: (mapping, original, problem)
        for name, mapping, original, problem in read_labels("ofelia", labels, "web")
    }
    mapping, original, problem = jobs["web.flush"]
    assert problem is None and original == "flush"
    assert "tty dropped" in mapping["description"]
    parse_job(mapping)
    empty, _, problem = jobs["web.broken"]
    assert empty == {} and problem is not None and "robfig/cron takes 5" in problem
