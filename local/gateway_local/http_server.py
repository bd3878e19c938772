"""Serve a WSGI app on loopback in a background thread (moto's server stack: werkzeug)."""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

LOOPBACK = "127.0.0.1"


class _QuietRequestHandler(WSGIRequestHandler):
    """Werkzeug logs every request line to stderr; the local stack has its own logs."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


class BackgroundServer:
    """A threaded HTTP/1.1 server bound to 127.0.0.1, started on construction.

    Port 0 asks the kernel for a free port; `port` and `url` tell which one it got.
    """

    def __init__(self, app: WSGIApplication, port: int = 0, *, name: str = "http") -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server: BaseWSGIServer = make_server(
            LOOPBACK, port, app, threaded=True, request_handler=_QuietRequestHandler
        )
        # A short poll keeps stop() quick; the default 0.5 s adds up across test fixtures.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{name}-server",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
