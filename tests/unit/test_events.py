"""Which events of a run are told, and how (pure): final attempts only, recovered,
the payload, the signature, the backoff; and the job file's `notify:`."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from orchestrator.errors import InvalidSpecError
from orchestrator.policies import notify_events
from orchestrator.records import RunRecord, RunStatus, RunTrigger
from orchestrator.spec import parse_default_notify, parse_job

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def spec(**fields: object) -> object:
    return parse_job(
        {
            "name": "j",
            "schedule": "@hourly",
            "image": "img",
            "notify": [
                {"webhook": "https://a.example/hook", "on": ["failed", "recovered", "started"]},
                {"webhook": "https://b.example/hook"},
            ],
            **fields,
        }
    )


def run(status: RunStatus, attempt: int = 1, **fields: object) -> RunRecord:
    values: dict[str, object] = {
        "id": 7,
        "job": "j",
        "trigger": RunTrigger.SCHEDULE,
        "attempt": attempt,
        "status": status,
        "scheduled_for": NOW,
        "created_at": NOW,
        "finished_at": NOW,
    }
    values.update(fields)
    return RunRecord(**values)  # type: ignore[arg-type]


def test_a_failure_is_told_to_each_receiver_listening_for_it() -> None:
    job = spec()
    told = notify_events.notifications(job, run(RunStatus.FAILED), ["failed"])  # type: ignore[arg-type]
    assert [(n.url, n.event) for n in told] == [
        ("https://a.example/hook", "failed"),
        ("https://b.example/hook", "failed"),  # the default: failed, timed_out, lost
    ]
    assert notify_events.notifications(job, run(RunStatus.SUCCEEDED), ["succeeded"]) == []  # type: ignore[arg-type]


def test_a_failure_that_will_be_retried_is_not_told_yet() -> None:
    job = spec(retries={"count": 2, "backoff": "10s"})
    assert notify_events.end_events(job, run(RunStatus.FAILED, attempt=1), None) == []  # type: ignore[arg-type]
    assert notify_events.end_events(job, run(RunStatus.TIMED_OUT, attempt=2), None) == []  # type: ignore[arg-type]
    assert notify_events.end_events(job, run(RunStatus.FAILED, attempt=3), None) == ["failed"]  # type: ignore[arg-type]
    manual = run(RunStatus.FAILED, attempt=1, trigger=RunTrigger.MANUAL)
    assert notify_events.end_events(job, manual, None) == ["failed"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("previous", "told"),
    [
        (RunStatus.FAILED, ["succeeded", "recovered"]),
        (RunStatus.LOST, ["succeeded", "recovered"]),
        (RunStatus.SUCCEEDED, ["succeeded"]),
        (RunStatus.CANCELLED, ["succeeded"]),
        (None, ["succeeded"]),
    ],
)
def test_recovered_is_a_success_after_a_final_failure(
    previous: RunStatus | None, told: list[str]
) -> None:
    assert notify_events.end_events(spec(), run(RunStatus.SUCCEEDED), previous) == told  # type: ignore[arg-type]


def test_the_payload_is_the_runs_json_with_the_event_and_the_output_tail() -> None:
    body = notify_events.payload(
        run(RunStatus.FAILED, exit_code=3, output="".join(f"l{i}\n" for i in range(30))),
        "failed",
    )
    assert body["id"] == 7 and body["status"] == "failed" and body["exit_code"] == 3
    assert body["event"] == "failed"
    assert body["output_tail"] == [f"l{i}" for i in range(10, 30)]
    assert "output" not in body


def test_the_signature_is_hmac_sha256_of_the_body() -> None:
    expected = hmac.new(b"k", b"body", hashlib.sha256).hexdigest()
    assert notify_events.signature(b"body", b"k") == f"sha256={expected}"


def test_backoff_doubles_from_a_second_up_to_five_minutes() -> None:
    assert [notify_events.retry_delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 8]
    assert notify_events.retry_delay(30) == 300


def test_started_is_told_only_to_receivers_that_ask_for_it() -> None:
    hook = notify_events.on_start(spec())  # type: ignore[arg-type]
    assert hook is not None
    assert [n.url for n in hook(run(RunStatus.RUNNING))] == ["https://a.example/hook"]
    quiet = parse_job({"name": "q", "schedule": "@daily", "image": "i"})
    assert notify_events.on_start(quiet) is None and notify_events.on_end(quiet) is None


@pytest.mark.parametrize(
    ("notify", "says"),
    [
        ("https://x", "notify: must be a list"),
        ([{"webhook": "ftp://x"}], "is not an http:// or https:// URL"),
        ([{"webhook": "https://user:pw@x/h"}], "a password in the URL would be stored"),
        ([{"webhook": "https://x/{{secret:../etc}}"}], "names no secret file"),
        ([{"webhook": "https://x", "on": ["exploded"]}], "'exploded' is not an event"),
        ([{"webhook": "https://x", "on": []}], "names no event"),
        ([{"webhook": "https://x", "secret": "a/b"}], "is not a secret's file name"),
        ([{"webhook": "https://x"}, {"webhook": "https://x"}], "is given twice"),
        ([{"url": "https://x"}], "unknown field"),
        ([{"on": ["failed"]}], "needs one of webhook"),
        ([{"webhook": "https://x", "apprise": "mailto://x"}], "has both webhook and apprise"),
        ([{"apprise": "mailto://smtp?to=a@b", "secret": "k"}], "signs webhooks only"),
        ([{"apprise": "hooks.internal"}], "is not an Apprise URL"),
        ([{"apprise": "slack://token a/b"}], "is not an Apprise URL"),
        ([{"apprise": "mailto://ops:pw@smtp?to=a@b"}], "a password in the URL would be stored"),
        ([{"apprise": "tgram://{{secret:../bot}}/1"}], "names no secret file"),
    ],
)
def test_bad_notify_entries_are_named(notify: object, says: str) -> None:
    with pytest.raises(InvalidSpecError, match="notify") as caught:
        parse_job({"name": "j", "schedule": "@daily", "image": "i", "notify": notify})
    assert says in str(caught.value)


def test_notify_round_trips_and_keeps_secrets_as_placeholders() -> None:
    job = parse_job(
        {
            "name": "j",
            "schedule": "@daily",
            "image": "i",
            "notify": [{"webhook": "https://x/h?k={{secret:hook_token}}", "secret": "hook_key"}],
        }
    )
    assert parse_job(job.to_dict()) == job
    assert job.to_dict()["notify"] == [
        {
            "webhook": "https://x/h?k={{secret:hook_token}}",
            "on": ["failed", "timed_out", "lost"],
            "secret": "hook_key",
        }
    ]


def test_a_ping_gets_start_success_and_final_failure() -> None:
    job = parse_job(
        {
            "name": "j",
            "schedule": "@hourly",
            "image": "img",
            "ping": "https://hc-ping.example/abc/",
            "retries": {"count": 1, "backoff": "1s"},
        }
    )
    start = notify_events.on_start(job)
    end = notify_events.on_end(job)
    assert start is not None and end is not None
    assert [(n.method, n.url) for n in start(run(RunStatus.RUNNING))] == [
        ("GET", "https://hc-ping.example/abc/start")
    ]
    assert [n.url for n in end(run(RunStatus.SUCCEEDED), None)] == ["https://hc-ping.example/abc"]
    assert end(run(RunStatus.FAILED, attempt=1), None) == []  # to be retried: no /fail yet
    assert [n.url for n in end(run(RunStatus.FAILED, attempt=2), None)] == [
        "https://hc-ping.example/abc/fail"
    ]
    assert end(run(RunStatus.CANCELLED), None) == []
    assert parse_job(job.to_dict()) == job


def test_apprise_receivers_are_told_through_the_outbox_by_method() -> None:
    job = parse_job(
        {
            "name": "j",
            "schedule": "@daily",
            "image": "i",
            "notify": [
                {"apprise": "mailto://ops:{{secret:smtp}}@smtp.internal?to=ops@example.org"},
                {"apprise": "slack://{{secret:slack_tokens}}", "on": ["succeeded"]},
            ],
        }
    )
    assert parse_job(job.to_dict()) == job
    assert job.to_dict()["notify"][0] == {
        "apprise": "mailto://ops:{{secret:smtp}}@smtp.internal?to=ops@example.org",
        "on": ["failed", "timed_out", "lost"],
    }
    end = notify_events.on_end(job)
    assert end is not None
    told = end(run(RunStatus.FAILED, attempt=2), None)
    assert [(n.method, n.url.split(":")[0]) for n in told] == [("APPRISE", "mailto")]


def test_service_wide_receivers_are_webhooks_or_apprise_urls() -> None:
    targets = parse_default_notify(
        "https://hooks.internal/cron  ntfy://{{secret:topic}}", "ORCHESTRATOR_NOTIFY"
    )
    assert [(t.kind, t.url) for t in targets] == [
        ("webhook", "https://hooks.internal/cron"),
        ("apprise", "ntfy://{{secret:topic}}"),
    ]


def test_an_apprise_message_is_short_and_links_to_the_run() -> None:
    payload = notify_events.with_link(
        notify_events.payload(
            run(RunStatus.FAILED, attempt=2, exit_code=3, output="a\nb\n"), "failed"
        ),
        "https://cron.example.org/",
    )
    title, body = notify_events.message(payload)
    assert title == f"j: run {payload['id']} failed"
    assert "exit code 3" in body and body.endswith("a\nb\n\nhttps://cron.example.org/runs/7")
    assert notify_events.with_link({"id": 7}, None) == {"id": 7}
