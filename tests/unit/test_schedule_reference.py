"""Our cron against independent references over a broad corpus of expressions.

Two references:
- croniter, a widely used third-party implementation, for every expression on which
  it follows crontab(5). It departs in one place: it treats a day field such as `*/2`
  as a restriction, where crontab(5) (and Vixie cron) treat any day field starting
  with `*` as unrestricted. Such expressions are checked against the second reference.
- a brute-force day-by-day evaluator written here straight from the man page.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from croniter import croniter

from orchestrator.schedule import next_fire_times, parse_schedule

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
FIELDS = [  # (low, high, names)
    (0, 59, None),
    (0, 23, None),
    (1, 31, None),
    (1, 12, MONTHS),
    (0, 7, DAYS),
]
STARTS = [
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(2027, 2, 28, 23, 59, 30, tzinfo=UTC),
    datetime(2028, 2, 29, 12, 0, tzinfo=UTC),
    datetime(2030, 12, 31, 23, 59, 59, tzinfo=UTC),
]
FIRES = 8

# Lines as operators write them in crontabs.
REAL_WORLD = [
    "0 3 * * *",
    "*/5 * * * *",
    "0 0 * * 0",
    "15 14 1 * *",
    "0 22 * * 1-5",
    "23 0-23/2 * * *",
    "5 4 * * sun",
    "0 0,12 1 */2 *",
    "0 4 8-14 * *",
    "0 0 1,15 * 3",
    "0 9 * * mon-fri",
    "30 6 * jan,apr,jul,oct mon",
    "0 0 13 * fri",
    "59 23 31 dec *",
    "0 0 29 2 *",
    "0 0 29 2 1",
    "0 0 31 * *",
    "45 23 * * 7",
    "0 12 * * 6,0",
    "0 0 L * *".replace("L", "28-31"),
    "*/15 9-17 * * 1-5",
    "0 */3 * * *",
    "0 0 */2 * mon",
    "0 0 * */3 */2",
    "0 0 1-31/7 * *",
]


def _expand(text: str, low: int, high: int, names: list[str] | None) -> set[int]:
    def value(token: str) -> int:
        if names and token.lower()[:3] in names and not token.isdigit():
            return names.index(token.lower()[:3]) + (1 if names is MONTHS else 0)
        return int(token)

    out: set[int] = set()
    for part in text.split(","):
        base, _, step = part.partition("/")
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-")
            first, last = value(a), value(b)
        else:
            first = last = value(base)
        out.update(range(first, last + 1, int(step) if step else 1))
    if names is DAYS and 7 in out:
        out = (out - {7}) | {0}
    return out


def reference(expression: str, after: datetime, count: int) -> list[datetime]:
    fields = expression.split()
    minutes, hours, doms, months, dows = (
        _expand(text, *spec) for text, spec in zip(fields, FIELDS, strict=True)
    )
    either = not fields[2].startswith("*") and not fields[4].startswith("*")
    found: list[datetime] = []
    day = after.date()
    while len(found) < count and day.year < after.year + 40:
        if day.month in months:
            dom_ok, dow_ok = day.day in doms, day.isoweekday() % 7 in dows
            if (dom_ok or dow_ok) if either else (dom_ok and dow_ok):
                for hour in sorted(hours):
                    for minute in sorted(minutes):
                        moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                        if moment > after and len(found) < count:
                            found.append(moment)
        day += timedelta(days=1)
    return found


def _random_field(rng: random.Random, low: int, high: int, names: list[str] | None) -> str:
    def number() -> str:
        n = rng.randint(low, high)
        if names and rng.random() < 0.4:
            index = n - (1 if names is MONTHS else 0)
            if 0 <= index < len(names):
                word = names[index]
                return rng.choice([word, word.upper(), word.capitalize()])
        return str(n)

    def item() -> str:
        kind = rng.random()
        if kind < 0.25:
            return number()
        if kind < 0.5:
            a, b = sorted(rng.sample(range(low, high + 1), 2))
            return f"{a}-{b}" + (f"/{rng.randint(1, 6)}" if rng.random() < 0.3 else "")
        if kind < 0.65:
            return f"*/{rng.randint(1, max(2, (high - low) // 2))}"
        return number()

    if rng.random() < 0.35:
        return "*"
    return ",".join(item() for _ in range(rng.choice([1, 1, 1, 2, 3])))


def corpus(size: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    while len(lines) < size:
        line = " ".join(_random_field(rng, *spec) for spec in FIELDS)
        if reference(line, STARTS[0], 1):  # skip lines that never fire (30 feb)
            lines.append(line)
    return lines


CORPUS = REAL_WORLD + corpus(600, seed=20261129)


def _croniter_agrees_with_crontab(expression: str) -> bool:
    dom, dow = expression.split()[2], expression.split()[4]
    return not ((dom.startswith("*") and dom != "*") or (dow.startswith("*") and dow != "*"))


@pytest.mark.parametrize("start", STARTS, ids=lambda s: s.strftime("%Y%m%d%H%M%S"))
def test_matches_the_brute_force_reference(start: datetime) -> None:
    mismatches = []
    for expression in CORPUS:
        ours = next_fire_times(parse_schedule(expression), start, FIRES)
        theirs = reference(expression, start, FIRES)
        if ours != theirs:
            mismatches.append((expression, ours[:3], theirs[:3]))
    assert not mismatches, mismatches[:5]


@pytest.mark.parametrize("start", STARTS, ids=lambda s: s.strftime("%Y%m%d%H%M%S"))
def test_matches_croniter(start: datetime) -> None:
    checked = 0
    mismatches = []
    for expression in CORPUS:
        if not _croniter_agrees_with_crontab(expression):
            continue
        ours = next_fire_times(parse_schedule(expression), start, FIRES)
        iterator = croniter(expression, start)
        theirs = [iterator.get_next(datetime).astimezone(UTC) for _ in range(FIRES)]
        checked += 1
        if ours != theirs:
            mismatches.append((expression, ours[:3], theirs[:3]))
    assert checked > 300
    assert not mismatches, mismatches[:5]


def test_six_fields_with_seconds_match_croniter() -> None:
    # croniter puts seconds last; we put them first, as the job format says.
    rng = random.Random(7)
    for expression in CORPUS[:150]:
        if not _croniter_agrees_with_crontab(expression):
            continue
        seconds = _random_field(rng, 0, 59, None)
        ours = next_fire_times(parse_schedule(f"{seconds} {expression}"), STARTS[1], FIRES)
        iterator = croniter(f"{expression} {seconds}", STARTS[1])
        theirs = [iterator.get_next(datetime).astimezone(UTC) for _ in range(FIRES)]
        assert ours == theirs, f"{seconds} {expression}"
