"""The HTTP server, in a thread of the service: uvicorn on a socket we bind ourselves,
so that an address in use is a clear error before anything else starts."""

from __future__ import annotations

import logging
import socket
import threading

import uvicorn
from fastapi import FastAPI

from orchestrator.api.limits import MAX_HEADER_BYTES, BoundedH11Protocol
from orchestrator.errors import OrchestratorError

log = logging.getLogger(__name__)
# Requests served at once; beyond it uvicorn answers 503 at once instead of queueing.
# uvicorn counts every open connection against its limit, log streams too: the limit is
# this plus the streams allowed (which the API caps itself), so that streams never take
# the places of requests.
MAX_CONCURRENT_REQUESTS = 200


class HttpServer:
    def __init__(self, app: FastAPI, host: str, port: int, streams: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY on accepted connections only
        # when the listening socket says TCP. Without it, a keep-alive client waits 40 ms
        # (Nagle against delayed ACKs) for every response.
        self._socket = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
            # Listening now, so a client told the address can connect before uvicorn's
            # loop has started (it queues until then).
            self._socket.listen(2048)
        except OSError as error:
            self._socket.close()
            raise OrchestratorError(
                f"--http: cannot listen on {host}:{port}: {error.strerror or error}"
            ) from None
        self.host = host
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            limit_concurrency=MAX_CONCURRENT_REQUESTS + streams,
            timeout_graceful_shutdown=2,
            server_header=False,
            http=BoundedH11Protocol,
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _serve(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException:  # SystemExit from uvicorn included: log, do not vanish
            log.exception("the HTTP server stopped")

    def start(self) -> None:
        self._thread.start()
        log.info("HTTP API listening on %s", self.url)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()
