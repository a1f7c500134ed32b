"""The HTTP API's routes: each parses its input, calls a use case and answers with the
same JSON shape as the CLI's `--json` (orchestrator.shapes).

Errors are JSON, `{"error": "one line"}`, with the status that fits: 400 bad input in the
path or query, 401 no or unknown token, 403 a read token writing, 404 not found, 409 the
state refuses (a disabled job, a run that has ended), 413 a body too large, 422 a job
file that does not validate, 503 the database or the engine is away. Never a traceback.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at runtime.

import glob
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator import __version__, shapes
from orchestrator.api.auth import ApiSettings, Principal
from orchestrator.api.errors import HttpError, status_of
from orchestrator.api.hosts import HostCheck
from orchestrator.api.limits import BodyLimit
from orchestrator.api.metrics import ServiceMetrics
from orchestrator.api.pages import COOKIE, add_pages
from orchestrator.api.readiness import CachedProbe
from orchestrator.api.streams import LogStreams
from orchestrator.errors import (
    InvalidInputError,
    InvalidSpecError,
    OrchestratorError,
)
from orchestrator.operations import Operations
from orchestrator.records import MAX_RUN_ID, RunStatus
from orchestrator.spec import load_job_texts
from orchestrator.units import parse_moment

glob_literal = glob.escape  # a job name as the one name it is (no glob)

log = logging.getLogger(__name__)

MAX_ID = MAX_RUN_ID
MAX_PAGE = 1000


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _validation_message(error: RequestValidationError) -> str:
    problems = []
    for problem in error.errors()[:3]:
        where = [str(part) for part in problem.get("loc", ())]
        place = f"{where[0]} parameter {where[-1]!r}" if len(where) > 1 else "request"
        problems.append(f"{place}: {problem.get('msg', 'invalid')}")
    return "; ".join(problems) or "invalid request"


def create_app(
    operations: Operations,
    settings: ApiSettings,
    metrics: ServiceMetrics,
    health: Callable[[], tuple[bool, str, dict[str, Any]]],
) -> FastAPI:
    """The API over `operations`. `health()` gives (healthy, why not, loop ages)."""
    app = FastAPI(
        title="orchestrator",
        version=__version__,
        description="Cron jobs as sibling containers: jobs, runs, ports, audit, metrics.",
        # The interactive pages load scripts from a CDN: not on an air-gapped host.
        docs_url=None,
        redoc_url=None,
    )
    # Inside the handler of unexpected errors, so that its refusal is a 413, not a 500.
    app.add_middleware(BodyLimit)
    # Added last, so outermost: a request for another Host is refused before its body.
    app.add_middleware(HostCheck, hosts=settings.allowed_hosts)

    @app.exception_handler(HttpError)
    async def api_error(request: Request, error: HttpError) -> Response:
        if error.page:
            return page_error(request, error)
        if error.status == 401:
            return _error(401, error.message, **{"WWW-Authenticate": "Bearer"})
        return _error(error.status, error.message)

    @app.exception_handler(OrchestratorError)
    async def orchestrator_error(_request: Request, error: OrchestratorError) -> JSONResponse:
        status = status_of(error)
        if status == 500:
            log.error("request failed: %s", error)
        return _error(status, " ".join(str(error).splitlines()[:5]) or type(error).__name__)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(error))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, error: Exception) -> JSONResponse:
        log.exception("request failed unexpectedly")
        return _error(500, "internal error: see the service's log")

    # --- who asks -------------------------------------------------------------------------

    def principal(request: Request, cookie: bool = False) -> Principal | None:
        """Who sent the request: its bearer token, or (for reads only, so that another
        site cannot make a signed-in browser write) the dashboard's sign-in cookie."""
        header = request.headers.get("authorization")
        if header is None:
            return identify_cookie(request) if cookie else None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HttpError(401, "the Authorization header is not 'Bearer TOKEN'")
        found = settings.tokens.identify(token.strip())
        if found is None:
            raise HttpError(401, "the token is not known")
        return found

    def reader(request: Request) -> Operations:
        who = principal(request, cookie=True)
        if who is None and not settings.read_open:
            raise HttpError(401, "a token is needed: send 'Authorization: Bearer TOKEN'")
        return operations.as_actor(f"api:{who.name}" if who else "api:anonymous")

    def writer(request: Request) -> Operations:
        who = principal(request)
        if who is None:
            if not settings.tokens.configured:
                raise HttpError(
                    401,
                    "no API token is configured, so nothing can be changed over HTTP: "
                    "set ORCHESTRATOR_API_TOKEN or ORCHESTRATOR_API_TOKENS_FILE",
                )
            raise HttpError(401, "writing needs a token: send 'Authorization: Bearer TOKEN'")
        if not who.can_write:
            raise HttpError(403, f"token {who.name!r} may only read")
        return operations.as_actor(f"api:{who.name}")

    def identify_cookie(request: Request) -> Principal | None:
        token = request.cookies.get(COOKIE)
        return settings.tokens.identify(token) if token else None

    page_error = add_pages(app, operations, settings, identify_cookie)
    streams = LogStreams(
        lambda run_id: operations.runs.watch(run_id, follow=True),
        operations.runs.get,
        settings.streams_per_client,
        settings.max_streams,
    )

    # --- jobs -----------------------------------------------------------------------------

    @app.get("/api/jobs", tags=["jobs"])
    def list_jobs(request: Request) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        return [shapes.job_summary(job, now) for job in reader(request).jobs.listing()]

    @app.get("/api/jobs/export", tags=["jobs"], response_class=PlainTextResponse)
    def export_jobs(request: Request) -> PlainTextResponse:
        """Every job as one job file (YAML); secret-looking values masked."""
        return PlainTextResponse(
            reader(request).jobs.export(), media_type="application/yaml; charset=utf-8"
        )

    @app.get("/api/jobs/{name}", tags=["jobs"])
    def show_job(request: Request, name: str) -> dict[str, Any]:
        return shapes.job_detail(reader(request).jobs.get(name), datetime.now(UTC))

    @app.post("/api/jobs/apply", tags=["jobs"])
    async def apply_jobs(
        request: Request,
        dry_run: bool = False,
        prune: bool = False,
        force: bool = False,
    ) -> dict[str, Any]:
        """A job file (YAML) in the body, applied as `jobs apply` does: all or nothing."""
        ops = writer(request)
        body = await request.body()  # at most APPLY_BODY_BYTES: BodyLimit counts it
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidSpecError("request body: not UTF-8 text") from None
        source = f"api:{ops.actor.removeprefix('api:')}"
        loaded = await run_in_threadpool(load_job_texts, [(source, text)])
        result = await run_in_threadpool(
            lambda: ops.jobs.apply(
                loaded, given="the request body", prune=prune, force=force, dry_run=dry_run
            )
        )
        return shapes.apply_result(result, dry_run)

    @app.post("/api/jobs/{name}/run", tags=["jobs"], status_code=202)
    def run_job(request: Request, name: str, force: bool = False) -> dict[str, Any]:
        """Queue a manual run for the service to start: 202 with the queued run."""
        return shapes.run_summary(writer(request).jobs.queue_run(name, force=force))

    @app.post("/api/jobs/{name}/enable", tags=["jobs"])
    def enable_job(request: Request, name: str) -> dict[str, Any]:
        changed = writer(request).jobs.set_enabled(name, True)
        return {"name": name, "enabled": True, "changed": changed}

    @app.post("/api/jobs/{name}/disable", tags=["jobs"])
    def disable_job(request: Request, name: str) -> dict[str, Any]:
        changed = writer(request).jobs.set_enabled(name, False)
        return {"name": name, "enabled": False, "changed": changed}

    @app.post("/api/jobs/pause", tags=["jobs"])
    def pause_jobs(request: Request, glob: str = "*") -> dict[str, Any]:
        """As `orchestrator pause [GLOB]`: the names paused now (404: none matches)."""
        return {"paused": list(writer(request).jobs.set_paused(glob, True))}

    @app.post("/api/jobs/resume", tags=["jobs"])
    def resume_jobs(request: Request, glob: str = "*") -> dict[str, Any]:
        return {"resumed": list(writer(request).jobs.set_paused(glob, False))}

    @app.post("/api/jobs/{name}/pause", tags=["jobs"])
    def pause_job(request: Request, name: str) -> dict[str, Any]:
        changed = writer(request).jobs.set_paused(glob_literal(name), True)
        return {"name": name, "paused": True, "changed": bool(changed)}

    @app.post("/api/jobs/{name}/resume", tags=["jobs"])
    def resume_job(request: Request, name: str) -> dict[str, Any]:
        changed = writer(request).jobs.set_paused(glob_literal(name), False)
        return {"name": name, "paused": False, "changed": bool(changed)}

    @app.delete("/api/jobs/{name}", tags=["jobs"])
    def delete_job(request: Request, name: str, force: bool = False) -> dict[str, Any]:
        """The job goes; its run history stays. 409 while other jobs chain to it,
        unless `?force=true`."""
        writer(request).jobs.delete(name, force=force)
        return {"deleted": name}

    # --- runs -----------------------------------------------------------------------------

    @app.get("/api/runs", tags=["runs"])
    def list_runs(
        request: Request,
        response: Response,
        job: str | None = None,
        status: RunStatus | None = None,
        since: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> list[dict[str, Any]]:
        """Newest first. The next page is `before=<the last id>`, also in the Link header."""
        ops = reader(request)
        moment = None
        if since is not None:
            try:
                moment = parse_moment(since, datetime.now(UTC))
            except InvalidInputError as error:
                raise HttpError(400, f"query parameter 'since': {error}") from None
        runs = ops.runs.list(job=job, status=status, since=moment, before=before, limit=limit)
        if len(runs) == limit:
            following = request.url.include_query_params(before=runs[-1].id)
            response.headers["Link"] = f'<{following}>; rel="next"'
        return [shapes.run_summary(run) for run in runs]

    @app.get("/api/runs/{run_id}", tags=["runs"])
    def show_run(request: Request, run_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> dict[str, Any]:
        return shapes.run_detail(reader(request).runs.get(run_id))

    @app.get("/api/runs/{run_id}/logs", tags=["runs"])
    async def run_logs(request: Request, run_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
        """Server-Sent Events: `waiting` (pending), `withheld` (its secrets cannot be
        read here), `output` (`{"text": ...}`, live), `skipped` (`{"bytes": n}`, output
        this viewer fell behind on), then `end` (the run), then it closes. 429 past the
        open streams allowed to one token (or address, for anonymous reads)."""
        who = principal(request, cookie=True)
        ops = reader(request)
        if who is not None:
            client = f"token {who.name!r}"
        else:
            client = f"address {request.client.host if request.client else 'unknown'}"
        return await streams.respond(client, lambda: ops.runs.get(run_id))

    @app.post("/api/runs/{run_id}/cancel", tags=["runs"])
    def cancel_run(
        request: Request,
        run_id: Annotated[int, Path(ge=1, le=MAX_ID)],
        grace: Annotated[int, Query(ge=0, le=86400)] = 10,
    ) -> dict[str, Any]:
        """Cancel a pending or running run: its container is stopped (SIGTERM, then SIGKILL
        after `grace` seconds); 409 when it has already ended."""
        return shapes.run_summary(writer(request).runs.cancel(run_id, grace))

    # --- ports, audit -----------------------------------------------------------------------

    @app.get("/api/ports", tags=["ports"])
    def list_ports(request: Request) -> list[dict[str, Any]]:
        return [shapes.lease(lease) for lease in reader(request).leases()]

    @app.get("/api/audit", tags=["audit"])
    def list_audit(
        request: Request,
        response: Response,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> list[dict[str, Any]]:
        """Every write through the API and the CLI, newest first."""
        entries = reader(request).audit_entries(limit=limit, before=before)
        if len(entries) == limit:
            following = request.url.include_query_params(before=entries[-1].id)
            response.headers["Link"] = f'<{following}>; rel="next"'
        return [shapes.audit_entry(entry) for entry in entries]

    # --- health and metrics -----------------------------------------------------------------

    @app.get("/healthz", tags=["health"])
    def healthz() -> JSONResponse:
        """200 while every loop of the service makes progress; 503 naming a stale one."""
        healthy, why, loops = health()
        if not healthy:
            return JSONResponse({"error": f"unhealthy: {why}", "loops": loops}, status_code=503)
        return JSONResponse({"status": "ok", "loops": loops})

    def probe() -> list[str]:
        problems = []
        try:
            operations.backends.store.ping()
        except OrchestratorError as error:
            problems.append(f"database: {error}")
        try:
            operations.backends.engine().facts()
        except OrchestratorError as error:
            problems.append(f"engine: {error}")
        return problems

    readiness = CachedProbe(probe)

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> JSONResponse:
        """200 when the database and the engine answered (a probe at most 2 s old); 503 if
        not, naming which (and where it is) only to a caller with a token."""
        problems = await readiness.problems()
        if not problems:
            return JSONResponse({"status": "ready"})
        if principal(request, cookie=True) is None:
            return JSONResponse({"error": "not ready"}, status_code=503)
        return JSONResponse({"error": "; ".join(problems)}, status_code=503)

    @app.get("/metrics", tags=["health"], response_class=PlainTextResponse)
    def prometheus_metrics(request: Request) -> Response:
        if settings.metrics_need_token and principal(request) is None:
            raise HttpError(401, "metrics need a token: send 'Authorization: Bearer TOKEN'")
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
