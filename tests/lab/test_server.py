"""`vbert lab`: the JSON API on an ephemeral loopback port, its input validation, and the page."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbert.errors import DataError
from vbert.finesse.metrics.rss import bottom_up, sample_score, similarity_matrix, top_down
from vbert.lab import Lab, LabInputError, LabLimits, is_loopback, make_server, parse_body
from vbert.lab import server as lab_server
from vbert.mergers import MeanPoolMerger

WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
]


def text_of(n_words: int) -> str:
    return " ".join(f"{WORDS[i % len(WORDS)]}{i // 7}" for i in range(n_words))


def broken_merger() -> MeanPoolMerger:
    raise FileNotFoundError("no weights in /nowhere")


@pytest.fixture
def server(fakes):
    lab = Lab(
        embedders={
            "words": fakes.WordEmbedder,
            "tiny": lambda: fakes.WordEmbedder(content_window=12, name="tiny"),
        },
        mergers={"decay": fakes.DecayMerger, "mean": MeanPoolMerger, "broken": broken_merger},
        limits=LabLimits(max_text_chars=3000, max_chunks=12, max_body_bytes=20_000),
        default_chunk_tokens=8,
    )
    srv = make_server(lab, "127.0.0.1", 0, quiet=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def call(srv, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    host, port = srv.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, dict(response.getheaders()), data
    finally:
        conn.close()


def analyze(srv, payload, content_type: str = "application/json", host: str | None = None):
    headers = {"Content-Type": content_type}
    if host:
        headers["Host"] = host
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, _, data = call(srv, "POST", "/api/analyze", body, headers)
    return status, json.loads(data)


def test_server_binds_loopback_by_default(server):
    assert server.server_address[0] == "127.0.0.1"
    assert server.loopback_only
    assert is_loopback("localhost") and is_loopback("[::1]") and not is_loopback("10.0.0.1")


def test_options(server):
    status, _, data = call(server, "GET", "/api/options")
    options = json.loads(data)
    assert status == 200
    assert options["embedders"] == ["words", "tiny"]
    assert options["mergers"] == ["decay", "mean", "broken", "native"]
    assert options["limits"]["max_chunks"] == 12 and options["defaults"]["chunk_tokens"] == 8


def test_text_is_cut_embedded_and_merged(server, fakes):
    status, result = analyze(server, {"text": text_of(40), "embedder": "words", "merger": "decay"})
    assert status == 200
    chunks = [c["text"] for c in result["chunks"]]
    assert len(chunks) == 5 and all(c["tokens"] == 8 for c in result["chunks"])
    vectors = fakes.WordEmbedder().encode(chunks)
    merger = fakes.DecayMerger()
    synths = np.stack([merger.merge(vectors[: i + 1]) for i in range(len(chunks))])  # one prefix at a time
    np.testing.assert_allclose(result["matrix"], similarity_matrix(vectors, synths), atol=2e-6)
    assert result["td"] == pytest.approx(top_down(vectors, synths), abs=1e-5)
    assert result["bu"] == pytest.approx(bottom_up(vectors, synths), abs=1e-5)
    assert result["score"] == pytest.approx(sample_score(result["td"], result["bu"], "balanced"))
    assert [r[0] for r in result["td_rows"]] == [1, 2, 3]
    assert [r[0] for r in result["bu_rows"]] == [1, 2, 3, 4]
    assert result["chunk_space"] == "base" and result["merger"]["name"] == "decay"


def test_chunks_in_merger_space_with_q2q2(server, fakes):
    chunks = [text_of(30)[i * 20 : i * 20 + 20] for i in range(4)]
    status, result = analyze(
        server,
        {
            "chunks": [*chunks, "   "],
            "merger": "decay",
            "chunk_space": "merger",
            "formula": "q2q2",
            "score_version": "sum",
        },
    )
    assert status == 200
    vectors = fakes.WordEmbedder().encode(chunks)
    merger = fakes.DecayMerger()
    singles = np.stack([merger.merge(v[None]) for v in vectors])
    synths = np.stack([merger.merge(vectors[: i + 1]) for i in range(4)])
    np.testing.assert_allclose(result["matrix"], similarity_matrix(singles, synths), atol=2e-6)
    td, bu = top_down(singles, synths, "q2q2"), bottom_up(singles, synths, "q2q2")
    assert result["score"] == pytest.approx((td + bu) * 500, abs=1e-3)
    assert result["formula"] == "q2q2" and result["chunk_space"] == "merger"


def test_native_mode_embeds_the_joined_prefixes(server, fakes):
    status, result = analyze(server, {"text": text_of(24), "merger": "native", "chunk_tokens": 6})
    assert status == 200
    chunks = [c["text"] for c in result["chunks"]]
    embedder = fakes.WordEmbedder()
    synths = embedder.encode([" ".join(chunks[: i + 1]) for i in range(len(chunks))])
    np.testing.assert_allclose(
        result["matrix"], similarity_matrix(embedder.encode(chunks), synths), atol=2e-6
    )
    assert result["chunk_space"] == "native"


@pytest.mark.parametrize(
    ("payload", "status", "field", "words"),
    [
        ({"text": ""}, 400, "text", "empty"),
        ({"text": "   \n\t "}, 400, "text", "empty"),
        ({"text": text_of(10)}, 400, "text", "at least 3"),
        ({"text": text_of(200)}, 400, "text", "at most 12"),
        ({"text": "x" * 3001}, 413, "text", "at most 3,000"),
        ({"text": text_of(40), "chunk_tokens": 2}, 400, "chunk_tokens", "from 4 to 64 (the window of words)"),
        ({"text": text_of(40), "chunk_tokens": "8"}, 400, "chunk_tokens", "whole number"),
        ({"text": text_of(40), "embedder": "e5-xxl"}, 400, "embedder", "choose one of words, tiny"),
        ({"text": text_of(40), "merger": "nope"}, 400, "merger", "choose one of decay"),
        ({"text": text_of(40), "formula": "q1q2"}, 400, "formula", "q1q3, q2q2"),
        ({"text": text_of(40), "colour": "red"}, 400, "colour", "unknown field"),
        ({"text": text_of(40), "chunks": ["a", "b", "c"]}, 400, "text", "either"),
        ({}, 400, "text", "either"),
        ({"chunks": ["one", "two"]}, 400, "text", "at least 3"),
        ({"chunks": "one two three"}, 400, "chunks", "list of strings"),
        ({"chunks": ["a b", text_of(70), "c"]}, 400, "text", "window"),
        ({"text": text_of(40), "merger": "broken"}, 422, "merger", "cannot be loaded here: no weights"),
        (
            {"text": text_of(40), "embedder": "tiny", "merger": "native", "chunk_tokens": 6},
            400,
            "merger",
            "window",
        ),
    ],
)
def test_invalid_input_is_explained(server, payload, status, field, words):
    got_status, result = analyze(server, payload)
    assert got_status == status, result
    assert result["field"] == field
    assert words in result["error"]


def test_protocol_errors(server):
    status, result = analyze(server, b"{not json", "application/json")
    assert status == 400 and "not valid JSON" in result["error"]
    status, result = analyze(server, {"text": text_of(40)}, "text/plain")
    assert status == 415 and "application/json" in result["error"]
    status, result = analyze(server, {"text": "y" * 30_000})
    assert status == 413 and "at most 20,000" in result["error"]
    status, result = analyze(server, [1, 2])
    assert status == 400 and "JSON object" in result["error"]
    status, result = analyze(server, {"text": text_of(40)}, host="attacker.example:80")
    assert status == 403
    status, _, data = call(server, "GET", "/secret")
    assert status == 404 and "no page" in json.loads(data)["error"]


def test_page_is_served_with_a_strict_policy(server):
    status, headers, data = call(server, "GET", "/")
    html = data.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "connect-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert 'id="lab-form"' in html and "uPlot" in html and "@@" not in html


def test_lab_page_in_the_browser(server, browser, screenshot):
    # The page's policy forbids eval, so waits use locators (not wait_for_function).
    from playwright.sync_api import expect

    page = browser.page
    page.goto(server.url)
    page.click("#lab-run")
    error = page.locator("#lab-error")
    error.wait_for(state="visible")
    assert "empty" in error.inner_text()
    page.fill("#lab-text", text_of(400))
    page.click("#lab-run")
    expect(error).to_contain_text("at most 12")
    page.fill("#lab-text", text_of(64))
    page.select_option("#lab-merger", "decay")
    page.click("#lab-run")
    page.locator("#lab-result").wait_for(state="visible")
    assert error.is_hidden()
    assert page.locator("#lab-chunks li").count() == 8
    readout = page.locator('[data-testid="readout-td"]')
    before = readout.inner_text()
    page.locator('.matrix-box[data-view="td"]').focus()
    page.keyboard.press("ArrowDown")
    assert readout.inner_text() != before and "s_2" in readout.inner_text()
    page.check('input[name="cut"][value="paragraphs"]')
    page.fill("#lab-text", "first part here\n\nsecond part there\n\nthird part now\n\nfourth and last")
    page.click("#lab-run")
    expect(page.locator("#lab-chunks li")).to_have_count(4)
    page.fill("#lab-text", text_of(64))
    page.check('input[name="cut"][value="tokens"]')
    page.click("#lab-run")
    expect(page.locator("#lab-chunks li")).to_have_count(8)
    screenshot(page, "lab")
    assert browser.errors == []
    assert all(url.startswith(server.url) for url in browser.requests), browser.requests


@pytest.mark.integration
def test_lab_with_the_default_embedder():
    from vbert.lab import spec_factories

    embedders, mergers = spec_factories(["default"], ["mean", "native"])
    lab = Lab(embedders=embedders, mergers=mergers)
    text = " ".join(
        f"Paragraph {i} talks about {topic} in some detail, with several sentences on the matter."
        for i, topic in enumerate(["rivers", "bread", "stars", "trains", "music", "chess"])
    )
    for merger in ("mean", "native"):
        result = lab.analyze({"text": text, "merger": merger, "chunk_tokens": 24})
        n = len(result["chunks"])
        assert n >= 3 and np.asarray(result["matrix"]).shape == (n, n)
        assert np.diag(np.asarray(result["matrix"]))[0] > 0.99  # s_0 embeds c_0 alone
        assert -2 <= result["td"] <= 2 and -2 <= result["bu"] <= 2


def test_bad_requests_never_wait_for_a_model_load(fakes):
    loads = []

    def load_embedder():
        loads.append("embedder")
        return fakes.WordEmbedder()

    lab = Lab(embedders={"words": load_embedder}, mergers={"decay": fakes.DecayMerger})
    for bad in (
        {"text": " "},
        {"text": "x" * 200_000},
        {"chunks": ["a", "b"]},
        {"text": "a b", "chunk_tokens": 2.5},
    ):
        with pytest.raises(LabInputError):
            lab.analyze(bad)
    assert loads == []
    lab.analyze({"text": text_of(40), "chunk_tokens": 8})
    lab.analyze({"text": text_of(40), "chunk_tokens": 8})
    assert loads == ["embedder"]  # loaded once, then reused


# The lab server under hostile or careless clients (#16 defect 9): bounded body parsing, a valid
# Content-Length, per-connection timeouts, and a burst of local connections without resets.
@pytest.fixture
def strict_server(fakes, monkeypatch):
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


def test_deeply_nested_json_is_a_400_not_a_recursion_error(strict_server):
    body = b"[" * 200_000 + b"]" * 200_000
    status, answer = raw_request(strict_server, post_head(str(len(body))), body)
    assert status == 400 and "nests deeper than" in answer["error"]
    # Brackets inside strings do not count, and a normal request still works afterwards.
    assert parse_body(json.dumps({"text": "[" * 1000}).encode()) == {"text": "[" * 1000}
    body = json.dumps({"chunks": ["a b", "c d", "e f"], "merger": "mean"}).encode()
    status, answer = raw_request(strict_server, post_head(str(len(body))), body)
    assert status == 200 and len(answer["matrix"]) == 3


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", " ", "+5"])
def test_an_invalid_content_length_is_a_400(strict_server, length):
    status, answer = raw_request(strict_server, post_head(length), b"{}")
    assert status == 400 and "Content-Length" in answer["error"]


def test_a_missing_content_length_is_a_411(strict_server):
    status, answer = raw_request(strict_server, post_head(None))
    assert status == 411


def test_parse_body_refuses_bad_bytes():
    with pytest.raises(DataError, match="not valid JSON"):
        parse_body(b"\xff\xfe")
    with pytest.raises(DataError, match="nests deeper"):
        parse_body(b'{"a": ' * 40 + b"1" + b"}" * 40)


def test_a_silent_or_non_http_client_is_disconnected(strict_server):
    """A TLS ClientHello (no line end) used to hold its thread forever."""
    with socket.create_connection(strict_server.server_address[:2], timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        start = time.monotonic()
        assert sock.recv(1024) == b""  # the server closed the connection
    assert time.monotonic() - start < 5


def test_a_burst_of_200_local_connections_gets_200_answers(strict_server):
    host, port = strict_server.server_address[:2]
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


# Fuzzing the lab's request path (#16 "fuzz every parser"): whatever the bytes or the JSON, the
# answer is a value or a typed error the server turns into a 4xx, never another exception.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELDS = ("text", "chunks", "embedder", "merger", "chunk_tokens", "formula", "score_version", "chunk_space")
REQUESTS = st.dictionaries(
    st.sampled_from(FIELDS), JSON | st.lists(st.text(max_size=30), max_size=6), max_size=5
)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200) | JSON.map(lambda value: json.dumps(value).encode()))
def test_parse_body_returns_json_or_a_data_error(body):
    with contextlib.suppress(DataError):
        parse_body(body)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=REQUESTS | JSON)
def test_analyze_answers_or_refuses_with_a_typed_error(fakes, request):
    lab = Lab(embedders={"words": fakes.WordEmbedder}, mergers={"mean": MeanPoolMerger})
    try:
        result = lab.analyze(request)
    except LabInputError as err:
        assert 400 <= err.status < 500
    else:
        assert len(result["matrix"]) == len(result["chunks"]) >= 3
