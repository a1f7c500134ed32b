"""`orchestrator notifications`: the outbox of run events for webhooks."""

from __future__ import annotations

import os

import click

from orchestrator import settings, shapes
from orchestrator.cli.context import AppContext, pass_app
from orchestrator.cli.formatting import emit_listing, human_time
from orchestrator.cli.options import json_option, limit_option
from orchestrator.records import DeliveryStatus


@click.group()
def notifications() -> None:
    """Notifications of run events (`notify:` in a job file): list them, test a job's."""


@notifications.command(name="list")
@click.option("--job", help="Only notifications of this job.")
@click.option(
    "--status",
    type=click.Choice([status.value for status in DeliveryStatus]),
    help="pending (not delivered yet), delivered, or failed (given up).",
)
@limit_option()
@json_option
@pass_app
def list_notifications(
    app: AppContext, job: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    """List notifications, newest first, with their delivery state and last answer.

    Example: orchestrator notifications list --status pending
    """
    items = app.operations().notifications(
        job=job, status=DeliveryStatus(status) if status else None, limit=limit
    )
    emit_listing(
        items,
        as_json,
        shape=shapes.notification,
        empty="no notifications",
        headers=["ID", "RUN", "JOB", "EVENT", "STATUS", "ATTEMPTS", "LAST ANSWER", "QUEUED (UTC)"],
        row=lambda item: [
            item.id,
            item.run_id,
            item.job,
            item.event,
            item.status.value,
            item.attempts,
            _answer(item.answers[-1]) if item.answers else None,
            human_time(item.created_at),
        ],
    )


def _answer(answer: dict[str, object]) -> str:
    if "status" in answer:
        return f"HTTP {answer['status']}"
    return str(answer.get("error", "-"))[:60]


@notifications.command()
@click.argument("job")
@pass_app
def test(app: AppContext, job: str) -> None:
    """Send a `test` event to every receiver of JOB now (webhooks and Apprise URLs), and
    print each one's answer. Exits 1 when one did not take it.

    Example: orchestrator notifications test nightly-report
    """
    answers = app.operations().test_notifications(job, os.environ.get(settings.PUBLIC_URL_ENV))
    if not answers:
        click.echo(f"job {job} has no notify: receivers")
        return
    for url, _, answer in answers:
        click.echo(f"{url}: {answer}")
    if not all(delivered for _, delivered, _ in answers):
        raise SystemExit(1)
