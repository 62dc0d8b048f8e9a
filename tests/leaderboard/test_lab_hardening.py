"""The lab server under hostile or careless clients (#16 defect 9): bounded body parsing, a valid
Content-Length, per-connection timeouts, and a burst of local connections without resets."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import pytest

from vbert.errors import DataError
from vbert.lab import Lab, make_server, parse_body
from vbert.lab import server as lab_server
from vbert.mergers import MeanPoolMerger


@pytest.fixture
def server(fakes, monkeypatch):
    monkeypatch.setattr(lab_server._Handler, "timeout", 1.0)  # keep the timeout test short
    lab = Lab(embedders={"words": fakes.WordEmbedder}, mergers={"mean": MeanPoolMerger})
    srv = make_server(lab, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def raw_request(srv, head: str, body: bytes = b"", timeout: float = 10.0) -> tuple[int, dict]:
    """Send hand-made request bytes; return the status and the JSON answer."""
    with socket.create_connection(srv.server_address[:2], timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n\r\n" + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read())


def post_head(length: str | None) -> str:
    lines = ["POST /api/analyze HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return "\r\n".join(lines)


def test_deeply_nested_json_is_a_400_not_a_recursion_error(server):
    body = b"[" * 200_000 + b"]" * 200_000
    status, answer = raw_request(server, post_head(str(len(body))), body)
    assert status == 400 and "nests deeper than" in answer["error"]
    # Brackets inside strings do not count, and a normal request still works afterwards.
    assert parse_body(json.dumps({"text": "[" * 1000}).encode()) == {"text": "[" * 1000}
    body = json.dumps({"chunks": ["a b", "c d", "e f"], "merger": "mean"}).encode()
    status, answer = raw_request(server, post_head(str(len(body))), body)
    assert status == 200 and len(answer["matrix"]) == 3


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", " ", "+5"])
def test_an_invalid_content_length_is_a_400(server, length):
    status, answer = raw_request(server, post_head(length), b"{}")
    assert status == 400 and "Content-Length" in answer["error"]


def test_a_missing_content_length_is_a_411(server):
    status, answer = raw_request(server, post_head(None))
    assert status == 411


def test_parse_body_refuses_bad_bytes():
    with pytest.raises(DataError, match="not valid JSON"):
        parse_body(b"\xff\xfe")
    with pytest.raises(DataError, match="nests deeper"):
        parse_body(b'{"a": ' * 40 + b"1" + b"}" * 40)


def test_a_silent_or_non_http_client_is_disconnected(server):
    """A TLS ClientHello (no line end) used to hold its thread forever."""
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        start = time.monotonic()
        assert sock.recv(1024) == b""  # the server closed the connection
    assert time.monotonic() - start < 5


def test_a_burst_of_200_local_connections_gets_200_answers(server):
    host, port = server.server_address[:2]
    clients = 200
    barrier = threading.Barrier(clients)
    statuses: list[int | str] = []
    lock = threading.Lock()

    def fetch() -> None:
        barrier.wait(timeout=30)
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            conn.request("GET", "/api/options")
            outcome: int | str = conn.getresponse().status
        except OSError as err:  # a reset or refusal
            outcome = type(err).__name__
        finally:
            conn.close()
        with lock:
            statuses.append(outcome)

    threads = [threading.Thread(target=fetch) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses.count(200) == clients, sorted(set(map(str, statuses)))
