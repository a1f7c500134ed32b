"""The dashboard: server-rendered pages over the same operations and tokens as the API.

Signing in puts the token in a cookie (`HttpOnly`, `SameSite=Strict`, `Secure` behind
TLS); every form that writes, signing out included, carries a token derived from it (an
HMAC under a key of this process), checked before the write, so another site cannot make
a signed-in browser write. The sign-in form's token is bound to a pre-session cookie
alike, and failed sign-ins are limited and audited (signin.py). With reads
open, pages render without signing in and their buttons lead to the sign-in page; a
read token sees no write buttons. Scripts and styles are files of this package: nothing
is fetched from elsewhere.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from orchestrator import __version__, shapes
from orchestrator.api.auth import ApiSettings, Principal
from orchestrator.api.errors import HttpError, status_of
from orchestrator.api.signin import (
    SIGNIN_COOKIE,
    WINDOW_SECONDS,
    FailureLimiter,
    FormTokens,
    client_key,
    new_presession,
)
from orchestrator.errors import InvalidInputError, OrchestratorError
from orchestrator.operations import Operations
from orchestrator.records import MAX_RUN_ID, RunRecord, RunStatus
from orchestrator.units import parse_moment, whole_number

HERE = Path(__file__).parent
COOKIE = "orchestrator_token"
MAX_ID = MAX_RUN_ID
PAGE = 50
TIMELINE_HOURS = 24
STRIP_RUNS = 10
STRIP_DAYS = 7
SESSION_SECONDS = 12 * 3600
EXPIRED = "this form has expired or came from elsewhere: reload the page"


def add_pages(
    app: FastAPI,
    operations: Operations,
    settings: ApiSettings,
    identify_cookie: Callable[[Request], Principal | None],
) -> Callable[[Request, HttpError], Response]:
    """The dashboard's pages on `app`; gives how a page's HttpError is answered (the API's
    handler of HttpError hands those raised with `page` to it)."""
    templates = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    forms = FormTokens()
    failures = FailureLimiter()
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def csrf_for(request: Request) -> str:
        return forms.of("session", request.cookies.get(COOKIE, ""))

    def form_matches(request: Request, form: dict[str, str]) -> bool:
        return forms.matches(form.get("csrf", ""), "session", request.cookies.get(COOKIE, ""))

    def set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
        response.set_cookie(
            name,
            value,
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies or request.url.scheme == "https",
            path="/",
            max_age=age,
        )

    def viewer(request: Request) -> tuple[Operations, Principal | None]:
        who = identify_cookie(request)
        if who is None and not settings.read_open:
            raise HttpError(401, "sign in", page=True)
        return operations.as_actor(f"web:{who.name}" if who else "web:anonymous"), who

    def render(request: Request, name: str, code: int = 200, **values: Any) -> HTMLResponse:
        who = identify_cookie(request)
        page = templates.get_template(name).render(
            request_path=request.url.path,
            query=request.url.query,
            who=who,
            can_write=bool(who and who.can_write),
            read_open=settings.read_open,
            csrf=csrf_for(request) if who else "",
            version=__version__,
            **values,
        )
        return HTMLResponse(
            page,
            status_code=code,
            headers={
                "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                "style-src 'self'; script-src 'self'; connect-src 'self'; "
                "frame-ancestors 'none'; form-action 'self'",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
                "Cache-Control": "no-store",
            },
        )

    def signin_redirect(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/signin?next={quote(target)}", status_code=303)

    async def writer(request: Request) -> tuple[Operations, dict[str, str]]:
        """The operations of a signed-in write token, once the form's CSRF token matches."""
        form = await _form(request)
        who = identify_cookie(request)
        if who is None:
            raise HttpError(401, "sign in", page=True)
        if not form_matches(request, form):
            raise HttpError(403, EXPIRED, page=True)
        if not who.can_write:
            raise HttpError(403, f"token {who.name!r} may only read", page=True)
        return operations.as_actor(f"web:{who.name}"), form

    def page_error(request: Request, error: HttpError) -> Response:
        if error.status == 401:
            return signin_redirect(request)
        return render(request, "error.html", error.status, message=error.message)

    def page_failure(request: Request, error: OrchestratorError) -> HTMLResponse:
        message = " ".join(str(error).splitlines()[:3])
        return render(request, "error.html", status_of(error), message=message)

    # --- signing in ----------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/jobs", status_code=303)

    def signin_form(request: Request, code: int, target: str, problem: str | None) -> Response:
        """The sign-in page, its form's token bound to the browser's pre-session cookie
        (set here when it has none)."""
        presession = request.cookies.get(SIGNIN_COOKIE, "")
        fresh = not (0 < len(presession) <= 64 and presession.isascii())
        if fresh:
            presession = new_presession()
        response = render(
            request,
            "signin.html",
            code,
            next=target,
            problem=problem,
            signin_csrf=forms.of("signin", presession),
        )
        if fresh:
            set_cookie(request, response, SIGNIN_COOKIE, presession, SESSION_SECONDS)
        return response

    def audit(request: Request, actor: str, action: str, result: str) -> Any:
        address = request.client.host if request.client else None
        return run_in_threadpool(operations.as_actor(actor).record, action, address, result)

    @app.get("/signin", include_in_schema=False)
    def signin_page(request: Request, next: str = "/jobs") -> Response:
        return signin_form(request, 200, _safe_next(next), None)

    @app.post("/signin", include_in_schema=False)
    async def signin(request: Request) -> Response:
        form = await _form(request)
        target = _safe_next(form.get("next", "/jobs"))
        presession = request.cookies.get(SIGNIN_COOKIE, "")
        if not forms.matches(form.get("csrf", ""), "signin", presession):
            return signin_form(request, 403, target, f"The sign-in form was refused: {EXPIRED}.")
        client = client_key(request.client.host if request.client else None)
        wait = failures.retry_after(client)
        if wait is not None:
            response = signin_form(
                request,
                429,
                target,
                f"Too many failed sign-ins from your address: try again in {wait} s.",
            )
            response.headers["Retry-After"] = str(wait)
            return response
        token = form.get("token", "").strip()
        who = settings.tokens.identify(token) if token else None
        if who is None:
            result = "error: the token is not known"
            if failures.failed(client):
                result += f"; more sign-ins from {client} refused for up to {WINDOW_SECONDS:.0f} s"
            await audit(request, "web:anonymous", "signin", result)
            return signin_form(request, 401, target, "That token is not known.")
        await audit(request, f"web:{who.name}", "signin", "ok")
        response = RedirectResponse(target, status_code=303)
        set_cookie(request, response, COOKIE, token, SESSION_SECONDS)
        return response

    @app.post("/signout", include_in_schema=False)
    async def signout(request: Request) -> Response:
        if not form_matches(request, await _form(request)):
            raise HttpError(403, EXPIRED, page=True)
        who = identify_cookie(request)
        if who is not None:
            await audit(request, f"web:{who.name}", "signout", "ok")
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(
            COOKIE,
            path="/",
            httponly=True,
            samesite="strict",
            secure=settings.secure_cookies or request.url.scheme == "https",
        )
        return response

    # --- jobs ----------------------------------------------------------------------------

    @app.get("/jobs", include_in_schema=False)
    def jobs_page(request: Request, q: str = "", status: str = "") -> Response:
        ops, _ = viewer(request)
        now = datetime.now(UTC)
        records = ops.jobs.listing()
        total = len(records)
        if q:
            records = [job for job in records if q.lower() in job.name.lower()]
        if status == "never":
            records = [job for job in records if job.last_status is None]
        elif status == "disabled":
            records = [job for job in records if not job.enabled]
        elif status:
            records = [
                job for job in records if job.last_status and job.last_status.value == status
            ]
        recent = ops.runs.recent_by_job(now - timedelta(days=STRIP_DAYS), STRIP_RUNS)
        rows = [
            {
                "job": shapes.job_summary(job, now),
                "strip": [
                    {"id": dot.id, "status": dot.status.value, "at": shapes.iso(dot.scheduled_for)}
                    for dot in reversed(recent.get(job.name, []))
                ],
            }
            for job in records
        ]
        return render(
            request,
            "jobs.html",
            rows=rows,
            total=total,
            q=q,
            status=status,
            statuses=[s.value for s in RunStatus],
        )

    @app.post("/jobs/{name}/run", include_in_schema=False)
    async def run_now(request: Request, name: str) -> Response:
        ops, _ = await writer(request)
        try:
            run = ops.jobs.queue_run(name)
        except OrchestratorError as error:
            return page_failure(request, error)
        return RedirectResponse(f"/runs/{run.id}", status_code=303)

    @app.post("/jobs/{name}/enable", include_in_schema=False)
    async def enable(request: Request, name: str) -> Response:
        return await _switch(request, name, True)

    @app.post("/jobs/{name}/disable", include_in_schema=False)
    async def disable(request: Request, name: str) -> Response:
        return await _switch(request, name, False)

    async def _switch(request: Request, name: str, enabled: bool) -> Response:
        ops, form = await writer(request)
        try:
            ops.jobs.set_enabled(name, enabled)
        except OrchestratorError as error:
            return page_failure(request, error)
        return RedirectResponse(_safe_next(form.get("back", "/jobs")), status_code=303)

    # --- runs ----------------------------------------------------------------------------

    @app.get("/runs", include_in_schema=False)
    def runs_page(
        request: Request, job: str = "", status: str = "", since: str = "", before: str = ""
    ) -> Response:
        ops, _ = viewer(request)
        problem = None
        moment = None
        wanted = None
        newer_than = whole_number(before, MAX_ID) if before else None
        try:
            if since:
                moment = parse_moment(since, datetime.now(UTC))
            if status:
                if status not in {s.value for s in RunStatus}:
                    raise InvalidInputError(f"status {status!r} is not one of the statuses")
                wanted = RunStatus(status)
            if before and not newer_than:
                raise InvalidInputError(f"before {before!r} is not a run id")
        except InvalidInputError as error:
            problem = str(error)
        runs = (
            []
            if problem
            else ops.runs.list(
                job=job or None,
                status=wanted,
                since=moment,
                before=newer_than,
                limit=PAGE,
            )
        )
        filters = {"job": job, "status": status, "since": since}
        following = newest = None
        if len(runs) == PAGE:
            values = {**filters, "before": runs[-1].id}
            following = "/runs?" + urlencode({k: v for k, v in values.items() if v})
        if before:
            newest = "/runs?" + urlencode({k: v for k, v in filters.items() if v})
        return render(
            request,
            "runs.html",
            400 if problem else 200,
            runs=[_run_view(run) for run in runs],
            job=job,
            status=status,
            since=since,
            problem=problem,
            following=following,
            newest=newest,
            statuses=[s.value for s in RunStatus],
        )

    @app.get("/runs/{run_id}", include_in_schema=False)
    def run_page(request: Request, run_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]) -> Response:
        ops, _ = viewer(request)
        try:
            run = ops.runs.get(run_id)
        except OrchestratorError as error:
            return page_failure(request, error)
        try:
            zone = ops.jobs.get(run.job).spec.timezone
        except OrchestratorError:
            zone = "UTC"
        attempts = [_run_view(other) for other in ops.runs.attempts(run)]
        return render(
            request,
            "run.html",
            run=_run_view(run),
            output=run.output or "",
            truncated=run.output_truncated,
            attempts=attempts if len(attempts) > 1 else [],
            zone=zone,
        )

    @app.post("/runs/{run_id}/cancel", include_in_schema=False)
    async def cancel(
        request: Request, run_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]
    ) -> Response:
        ops, _ = await writer(request)
        try:
            ops.runs.cancel(run_id, 10)
        except OrchestratorError as error:
            return page_failure(request, error)
        return RedirectResponse(f"/runs/{run_id}", status_code=303)

    # --- the timeline ----------------------------------------------------------------------

    @app.get("/timeline", include_in_schema=False)
    def timeline_page(request: Request) -> Response:
        ops, _ = viewer(request)
        now = datetime.now(UTC)
        start = now - timedelta(hours=TIMELINE_HOURS)
        span = (now - start).total_seconds()
        lanes: dict[str, list[dict[str, Any]]] = {}
        for run in ops.runs.in_window(start):
            began = max(run.started_at or run.scheduled_for, start)
            ended = min(run.finished_at or now, now)
            if run.status is RunStatus.SKIPPED or run.started_at is None:
                ended = began
            width = max(0.4, (ended - began).total_seconds() / span * 100)
            # A run that just happened still gets a visible bar, ending at the right edge.
            left = min(max(0.0, (began - start).total_seconds() / span * 100), 100 - width)
            lanes.setdefault(run.job, []).append(
                {**_run_view(run), "left": round(left, 3), "width": round(width, 3)}
            )
        hours = [
            {
                "left": round(i / TIMELINE_HOURS * 100, 3),
                "at": shapes.iso(start + timedelta(hours=i)),
            }
            for i in range(0, TIMELINE_HOURS + 1, 3)
        ]
        return render(
            request,
            "timeline.html",
            lanes=sorted(lanes.items()),
            start=shapes.iso(start),
            end=shapes.iso(now),
            hours=hours,
        )

    return page_error


async def _form(request: Request) -> dict[str, str]:
    body = (await request.body()).decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(body).items()}


def _safe_next(target: str) -> str:
    """Only a path of this site (never //host or a scheme): no open redirect."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/jobs"
    return target


def _run_view(run: RunRecord) -> dict[str, Any]:
    view = shapes.run_summary(run)
    view["finished"] = run.status.finished
    if run.started_at and run.finished_at:
        view["duration"] = f"{(run.finished_at - run.started_at).total_seconds():.1f}s"
    else:
        view["duration"] = None
    if run.started_at:
        view["lateness"] = f"{(run.started_at - run.scheduled_for).total_seconds():.1f}s"
    else:
        view["lateness"] = None
    return view
