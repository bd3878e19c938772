"""The signing proxy: a local HTTP server that lets any Cloudflare API client (wrangler, the SDKs,
curl) call the gateway with no Cloudflare token.

    with running_proxy(ProxyConfig(gateway_url=..., cloudflare_api_url=..., auth=...)) as base:
        # base == "http://127.0.0.1:54321/client/v4": the client's CLOUDFLARE_API_BASE_URL

It listens on 127.0.0.1 only (an ephemeral port unless told), one thread per connection, HTTP/1.1
with keep-alive and `Expect: 100-continue`. Each request under /client/v4 is read whole (bounded:
above `max_request_bytes` a 413 in Cloudflare's envelope), then either signed with SigV4 for the
gateway (the client's placeholder `Authorization` dropped, large bodies gzipped) or, for asset
uploads, sent to Cloudflare as it came, session JWT included (`proxy_rules`). The answer comes back
with its status, headers and bytes unchanged; failing to reach the upstream is a 502 (504 on a
timeout) in the envelope, never a stack trace. One line per request goes to `log`: an id, method,
path, where it went, status and milliseconds; never a header value, so never a credential, a
signature or a JWT.
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from botocore.exceptions import BotoCoreError

from assets_gateway_client.gateway import GATEWAY_TIMEOUT
from assets_gateway_client.proxy_rules import (
    API_PREFIX,
    GZIP_THRESHOLD_BYTES,
    Upstream,
    envelope,
    forwarded_request_headers,
    forwarded_response_headers,
    gzip_body,
    should_gzip,
    upstream_for,
)
from assets_gateway_client.sizes import format_bytes
from assets_gateway_client.uploader import UPLOAD_TIMEOUT

if TYPE_CHECKING:
    from assets_gateway_client.sigv4 import SigV4Auth

__all__ = ["LOOPBACK", "PROXY_ID_HEADER", "ProxyConfig", "running_proxy"]

LOOPBACK = "127.0.0.1"
PROXY_ID_HEADER = "X-Assets-Gateway-Proxy-Id"  # the id of the request's line in the log
# A bucket of assets holds files of up to 25 MiB each, base64-encoded: well under this.
MAX_REQUEST_BYTES = 128 * 1024 * 1024
# Answers are read whole before they are passed on (a failure midway is then a clean 502);
# the gateway's are below Lambda's 6 MB, Cloudflare's upload answers tiny.
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
# A body over the limit is read and dropped up to this size before the 413 (see `_read_body`).
DRAIN_BYTES = 16 * 1024 * 1024
IDLE_TIMEOUT_S = 60.0  # a connection silent this long (between or within requests) is closed
_READ_CHUNK = 1024 * 1024
_MAX_CHUNK_LINE = 1024

# The proxy's own answers, in Cloudflare's envelope with the gateway's codes (README, "Codes").
CODE_BAD_REQUEST = 19000
CODE_TOO_LARGE = 19002
CODE_UNREACHABLE = 19031
CODE_INTERNAL = 19099
CODE_NO_ROUTE = 7000  # Cloudflare's "No route for that URI"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ProxyConfig:
    """Where the proxy sends requests, who signs them, and its bounds."""

    gateway_url: str  # ends with /client/v4
    cloudflare_api_url: str  # ends with /client/v4
    auth: SigV4Auth
    port: int = 0  # 0: an ephemeral port
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_response_bytes: int = MAX_RESPONSE_BYTES
    gzip_threshold_bytes: int = GZIP_THRESHOLD_BYTES
    idle_timeout_s: float = IDLE_TIMEOUT_S
    gateway_timeout: httpx.Timeout = field(default_factory=lambda: GATEWAY_TIMEOUT)
    cloudflare_timeout: httpx.Timeout = field(default_factory=lambda: UPLOAD_TIMEOUT)
    log: Callable[[str], None] = field(default=_stderr)


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    note: str = ""  # for the log line: the upstream's request id, a gzip, a failure


class _Refused(Exception):
    """The request is answered by the proxy itself, and its connection closed."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.answer = _own_answer(status, code, message)


def _own_answer(status: int, code: int, message: str) -> _Answer:
    text = f"assets-gateway proxy: {message}"
    return _Answer(status, [("Content-Type", "application/json")], envelope(code, text), message)


class _HungUp(Exception):
    """The client closed its connection before its request was whole: nobody to answer."""


def _read_exactly(stream: BufferedIOBase, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise _HungUp("the request body ended before its length")
    return data


def _read_chunked(stream: BufferedIOBase, limit: int, drain_limit: int) -> bytes:
    """A `Transfer-Encoding: chunked` body (RFC 9112 §7.1), trailers skipped. Over `limit` it is
    still read to its end (up to `drain_limit`), so the client sees the 413, not a reset."""
    parts: list[bytes] = []
    total = 0
    while True:
        line = stream.readline(_MAX_CHUNK_LINE)
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise _Refused(400, CODE_BAD_REQUEST, "malformed chunked request body") from None
        if size < 0:
            raise _Refused(400, CODE_BAD_REQUEST, "malformed chunked request body")
        if size == 0:
            while stream.readline(_MAX_CHUNK_LINE) not in (b"\r\n", b"\n", b""):
                pass  # trailer fields: not forwarded
            if total > limit:
                raise _too_large(limit, format_bytes(total))
            return b"".join(parts)
        total += size
        if total > drain_limit:
            raise _too_large(limit, f"more than {format_bytes(drain_limit)}")
        chunk = _read_exactly(stream, size)
        if total <= limit:
            parts.append(chunk)
        else:
            parts.clear()
        if stream.readline(_MAX_CHUNK_LINE) not in (b"\r\n", b"\n"):
            raise _Refused(400, CODE_BAD_REQUEST, "malformed chunked request body")


def _discard(stream: BufferedIOBase, size: int) -> None:
    while size > 0 and (data := stream.read(min(size, _READ_CHUNK))):
        size -= len(data)


def _too_large(limit: int, size: str) -> _Refused:
    return _Refused(
        413,
        CODE_TOO_LARGE,
        f"the request body ({size}) is over the proxy's limit of {format_bytes(limit)}",
    )


class _Forwarder:
    """Sends one request to its upstream and reads the answer, bounded."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
        self._clients = {
            Upstream.GATEWAY: httpx.Client(timeout=config.gateway_timeout, limits=limits),
            Upstream.CLOUDFLARE: httpx.Client(timeout=config.cloudflare_timeout, limits=limits),
        }
        self._bases = {
            Upstream.GATEWAY: config.gateway_url.rstrip("/"),
            Upstream.CLOUDFLARE: config.cloudflare_api_url.rstrip("/"),
        }

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def forward(
        self,
        upstream: Upstream,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
    ) -> _Answer:
        """`target` is the raw path (under /client/v4) and query, as the client sent them."""
        url = self._bases[upstream] + target[len(API_PREFIX) :]
        sent = forwarded_request_headers(headers, upstream)
        note = ""
        if should_gzip(upstream, len(body), headers, self.config.gzip_threshold_bytes):
            compressed = gzip_body(body)
            note = f"gzip {format_bytes(len(body))} -> {format_bytes(len(compressed))}"
            body = compressed
            sent = [(n, v) for n, v in sent if n.lower() != "content-encoding"]  # "identity"
            sent.append(("Content-Encoding", "gzip"))
        # Latin-1 both ways: header bytes pass through exactly, whatever they hold.
        request = httpx.Request(
            method,
            url,
            headers=[(name.encode("latin-1"), value.encode("latin-1")) for name, value in sent],
            content=body or None,
        )
        if upstream is Upstream.GATEWAY:
            try:
                self.config.auth.sign(request)
            except (BotoCoreError, ValueError) as error:  # expired credentials failing to refresh
                message = f"cannot sign for the gateway: {type(error).__name__}: {error}"
                return _own_answer(500, CODE_INTERNAL, message)
        where = f"the {upstream.value} at {self._bases[upstream]}"
        try:
            response = self._clients[upstream].send(request, stream=True, follow_redirects=False)
            try:
                content = self._read(response)
            finally:
                response.close()
        except httpx.TimeoutException as error:
            message = f"{where} did not answer in time ({type(error).__name__})"
            return _own_answer(504, CODE_UNREACHABLE, message)
        except httpx.HTTPError as error:
            message = f"cannot reach {where}: {type(error).__name__}: {error or 'no answer'}"
            return _own_answer(502, CODE_UNREACHABLE, message)
        except _Refused as refused:
            return refused.answer
        request_id = response.headers.get("x-amzn-requestid") or response.headers.get("cf-ray")
        notes = [n for n in (note, f"upstream id {request_id}" if request_id else "") if n]
        raw = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in response.headers.raw]
        return _Answer(
            response.status_code, forwarded_response_headers(raw), content, "; ".join(notes)
        )

    def _read(self, response: httpx.Response) -> bytes:
        """The answer's bytes as sent (still content-encoded), at most `max_response_bytes`."""
        limit = self.config.max_response_bytes
        parts: list[bytes] = []
        size = 0
        for chunk in response.iter_raw():
            size += len(chunk)
            if size > limit:
                raise _Refused(
                    502, CODE_UNREACHABLE, f"the answer is larger than {format_bytes(limit)}"
                )
            parts.append(chunk)
        return b"".join(parts)


class _ProxyServer(ThreadingHTTPServer):
    """One daemon thread per connection; knows its open connections so `stop` can close them."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((LOOPBACK, config.port), _ProxyHandler)
        self.forwarder = _Forwarder(config)  # once the port is had: nothing to close otherwise

    def server_bind(self) -> None:
        # HTTPServer's own looks the host name up (getfqdn), which can stall: 127.0.0.1 it is.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = LOOPBACK, int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed outside a request's own handling (the client went away while
        its answer was written): one line, no traceback."""
        error = sys.exc_info()[1]
        self.config.log(f"assets-gateway proxy: connection ended: {type(error).__name__}: {error}")

    def close_connections(self) -> None:
        """Wake every connection thread (idle keep-alive ones wait for the client otherwise)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries its length
    # Headers and body leave in two writes: with Nagle's algorithm the second waits for the
    # client's delayed ACK, ~40 ms on every answer.
    disable_nagle_algorithm = True
    server: _ProxyServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.config.idle_timeout_s)

    # -- every method is forwarded alike ------------------------------------------------------

    def do_GET(self) -> None:
        self._serve()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def handle_expect_100(self) -> bool:
        """Refuse a body over the limit before the client sends it; else `100 Continue`."""
        declared = self._declared_length()
        if declared is not None and declared > self.server.config.max_request_bytes:
            self._serve(body_sent=False)  # answers 413 and closes, the body never sent
            return False
        return super().handle_expect_100()

    def _declared_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            return -1

    # -- one request --------------------------------------------------------------------------

    def _serve(self, *, body_sent: bool = True) -> None:
        started = time.perf_counter()
        request_id = secrets.token_hex(4)
        target = self._target()
        path = target.split("?", 1)[0]
        upstream = upstream_for(self.command, path)
        where = upstream.value if upstream is not None else "proxy"
        try:
            if upstream is None:
                message = f"no route for {path[:200]!r}: only {API_PREFIX}/... is served"
                raise _Refused(404, CODE_NO_ROUTE, message)
            body = self._read_body(body_sent=body_sent)
            answer = self.server.forwarder.forward(
                upstream, self.command, target, list(self.headers.items()), body
            )
        except _Refused as refused:
            answer, where = refused.answer, "proxy"
            self.close_connection = True  # what is left of the request is not read
        except TimeoutError:  # the client stopped sending midway
            seconds = self.server.config.idle_timeout_s
            message = f"the request body did not arrive within {seconds:g} s"
            answer, where = _own_answer(408, CODE_BAD_REQUEST, message), "proxy"
            self.close_connection = True
        except _HungUp as hung_up:
            self.close_connection = True
            self._log(request_id, target, f"client hung up: {hung_up}", started)
            return
        except ConnectionError:
            raise  # the client went away: nobody to answer (`handle_error` says it in one line)
        # A defect of the proxy: the client gets a clean envelope, the log its one line.
        except Exception as error:  # noqa: BLE001 - said in the log line, never a traceback
            message = f"internal error ({type(error).__name__}); see the proxy's log, {request_id}"
            answer, where = _own_answer(500, CODE_INTERNAL, message), "proxy"
            answer = replace(answer, note=f"{type(error).__name__}: {error}")
            self.close_connection = True
        # Said before the answer is sent: whoever has the answer can read its line.
        note = f" ({answer.note})" if answer.note else ""
        self._log(request_id, target, f"{where} {answer.status}", started, note)
        self._write(answer, request_id)

    def _log(
        self, request_id: str, target: str, outcome: str, started: float, note: str = ""
    ) -> None:
        """The request's line: never a header value, so never a credential or a JWT."""
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.server.config.log(
            f"assets-gateway proxy: {request_id} {self.command} {target[:300]} -> {outcome} "
            f"{elapsed_ms:.0f} ms{note}"
        )

    def _target(self) -> str:
        """The raw path and query; an absolute-form target (a client using us as its HTTP
        proxy) reduced to them."""
        if self.path.startswith(("http://", "https://")):
            parts = urlsplit(self.path)
            return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return self.path

    def _read_body(self, *, body_sent: bool) -> bytes:
        limit = self.server.config.max_request_bytes
        # A body over the limit is still read (and dropped) up to this, so that the client,
        # which reads nothing until it has sent everything, sees the 413 rather than a reset.
        drain_limit = max(limit, DRAIN_BYTES)
        encoding = self.headers.get("Transfer-Encoding", "").strip().lower()
        if encoding:
            if encoding != "chunked":
                raise _Refused(
                    400, CODE_BAD_REQUEST, f"Transfer-Encoding {encoding[:40]!r} is not supported"
                )
            return _read_chunked(self.rfile, limit, drain_limit)
        declared = self._declared_length()
        if declared is None:
            return b""
        if declared < 0:
            raise _Refused(400, CODE_BAD_REQUEST, "Content-Length is not a number of bytes")
        if declared > limit:
            if body_sent and declared <= drain_limit:
                _discard(self.rfile, declared)
            raise _too_large(limit, format_bytes(declared))
        return _read_exactly(self.rfile, declared)

    def _write(self, answer: _Answer, request_id: str) -> None:
        self.send_response_only(answer.status, _reason(answer.status))
        names = set()
        for name, value in answer.headers:
            names.add(name.lower())
            self.send_header(name, value)
        if "date" not in names:
            self.send_header("Date", self.date_time_string())
        self.send_header(PROXY_ID_HEADER, request_id)
        no_body = answer.status in (204, 304) or 100 <= answer.status < 200
        # A HEAD answer's length would be the GET's, which is not known here: none is sent (no
        # body follows either way, so the connection stays in step).
        if not no_body and self.command != "HEAD":
            self.send_header("Content-Length", str(len(answer.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and not no_body:
            self.wfile.write(answer.body)
        self.wfile.flush()

    def log_message(self, format: str, *args: Any) -> None:
        # http.server's own notes (a malformed request line, a timed-out connection); its
        # per-request line is replaced by ours. None of them holds a header value.
        self.server.config.log(f"assets-gateway proxy: {format % args}")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, unknown method) in the envelope."""
        self.close_connection = True
        # A request line too broken to name its version still gets a status line and headers.
        self.request_version = self.protocol_version
        text = message or _reason(code) or "refused"
        self.log_message("%s %s", code, text)
        self._write(_own_answer(code, CODE_BAD_REQUEST, text), secrets.token_hex(4))


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


@contextlib.contextmanager
def running_proxy(config: ProxyConfig) -> Iterator[str]:
    """Serve on 127.0.0.1 until the block ends; yields the base URL for clients
    (`http://127.0.0.1:PORT/client/v4`). OSError when the port cannot be had."""
    server = _ProxyServer(config)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="assets-gateway-proxy",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_port}{API_PREFIX}"
    finally:
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join(timeout=5)
        server.forwarder.close()
