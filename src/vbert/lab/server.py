"""The lab's HTTP server: Python's threaded ``http.server``, bound to 127.0.0.1 by default.

JSON API:

* ``GET /api/options``: the embedders, mergers, formulas and limits the page offers;
* ``POST /api/analyze`` (``Content-Type: application/json``): ``{"text": ...}`` or
  ``{"chunks": [...]}`` plus ``embedder``, ``merger``, ``chunk_tokens``, ``formula``,
  ``score_version``, ``chunk_space``; answers the matrix and per-row quartiles, or
  ``{"error": message, "field": name}`` with status 400/411/413/415/422.

Hardening: requests whose ``Host`` is not a loopback name are refused while the server is
bound to loopback (DNS-rebinding protection); a body must declare a valid Content-Length no
larger than the limit, and its JSON may nest at most :data:`MAX_JSON_DEPTH` levels (checked
before parsing, so a deeply nested body is a 400, never a recursion error); every connection
has a socket timeout, so a silent or non-HTTP client (a TLS handshake, say) cannot hold a
thread; and the listen backlog takes a burst of local connections without resets.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from vbert.errors import DataError
from vbert.lab.analysis import Lab, LabInputError

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
CSP = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'"
)
#: A request is a flat object with one list; anything deeper is refused before parsing.
MAX_JSON_DEPTH = 32
#: Seconds a connection may stay silent (while sending its request or reading the answer).
SOCKET_TIMEOUT_S = 15.0
#: Pending connections the kernel queues before it refuses new ones (the standard library's is 5).
LISTEN_BACKLOG = 512
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address) stays on this machine."""
    if host.strip("[]").lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_body(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Decode a JSON request body whose nesting is at most ``max_depth``; else a :class:`DataError`."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"the request body is not valid JSON ({err})") from None
    depth = 0
    for token in _JSON_TOKENS.finditer(text):  # strings are matched whole, so their brackets do not count
        bracket = token.group()
        if bracket in "[{":
            depth += 1
            if depth > max_depth:
                raise DataError(f"the request body nests deeper than {max_depth} levels; send a flat object")
        elif bracket in "]}":
            depth -= 1
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as err:
        raise DataError(f"the request body is not valid JSON ({err})") from None


class LabServer(ThreadingHTTPServer):
    """The lab's HTTP server; ``lab`` does the work, ``page`` is the rendered HTML."""

    daemon_threads = True
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], lab: Lab, quiet: bool = False) -> None:
        from vbert.finesse.leaderboard.page import SITE_ASSETS, render_page

        self.lab = lab
        self.quiet = quiet
        self.loopback_only = is_loopback(address[0])
        self.page = render_page("lab.html", "vbert lab", lab.options(), (*SITE_ASSETS, "lab.js")).encode(
            "utf-8"
        )
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}/"


class _Handler(BaseHTTPRequestHandler):
    server: LabServer
    server_version = "vbert-lab"
    timeout = SOCKET_TIMEOUT_S  # applied to the connection's socket by StreamRequestHandler.setup

    def log_message(self, format: str, *args: Any) -> None:
        if not self.server.quiet:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(
            status, json.dumps(payload, allow_nan=False).encode("utf-8"), "application/json; charset=utf-8"
        )

    def _error(self, status: int, message: str, field_name: str | None = None) -> None:
        self._json(status, {"error": message, "field": field_name})

    def _host_allowed(self) -> bool:
        if not self.server.loopback_only:
            return True
        host = self.headers.get("Host", "")
        name = urlsplit(f"//{host}").hostname or ""
        return is_loopback(name)

    def do_GET(self) -> None:
        if not self._host_allowed():
            return self._error(HTTPStatus.FORBIDDEN, "requests must address the lab by a loopback name")
        path = urlsplit(self.path).path
        if path in ("/", "/index.html"):
            return self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        if path == "/api/options":
            return self._json(HTTPStatus.OK, self.server.lab.options())
        return self._error(
            HTTPStatus.NOT_FOUND, f"no page at {path}; open / or call /api/options, /api/analyze"
        )

    def _content_length(self) -> int | None:
        """The declared body size, after answering 411/400/413 (and returning None) when it is unusable."""
        declared = self.headers.get("Content-Length")
        if declared is None:
            self._error(HTTPStatus.LENGTH_REQUIRED, "the request needs a Content-Length header")
            return None
        # The body cannot be skipped without a trustworthy length, so the connection ends after an error.
        self.close_connection = True
        if not re.fullmatch(r"[0-9]+", declared.strip()):
            self._error(
                HTTPStatus.BAD_REQUEST, f"Content-Length must be a whole number of bytes, got {declared!r}"
            )
            return None
        length = int(declared)
        limit = self.server.lab.limits.max_body_bytes
        if length > limit:
            self._error(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"The request has {length:,} bytes; the lab takes at most {limit:,}. Paste a shorter text.",
                "text",
            )
            return None
        self.close_connection = False
        return length

    def do_POST(self) -> None:
        if not self._host_allowed():
            return self._error(HTTPStatus.FORBIDDEN, "requests must address the lab by a loopback name")
        if urlsplit(self.path).path != "/api/analyze":
            return self._error(HTTPStatus.NOT_FOUND, "POST to /api/analyze")
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return self._error(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the request as Content-Type: application/json"
            )
        length = self._content_length()
        if length is None:
            return None
        try:
            request = parse_body(self.rfile.read(length))
        except DataError as err:
            return self._error(HTTPStatus.BAD_REQUEST, str(err))
        try:
            result = self.server.lab.analyze(request)
        except LabInputError as err:
            return self._error(err.status, str(err), err.field)
        except ValueError as err:  # an embedder or merger refusing its input: say why
            return self._error(HTTPStatus.UNPROCESSABLE_ENTITY, f"the analysis failed: {err}")
        return self._json(HTTPStatus.OK, result)


def make_server(lab: Lab, host: str = "127.0.0.1", port: int = 8765, quiet: bool = False) -> LabServer:
    """A lab server bound to ``host:port`` (port 0 = any free port); call ``serve_forever()``."""
    return LabServer((host, port), lab, quiet=quiet)
