"""`vbert lab`: the JSON API on an ephemeral loopback port, its input validation, and the page."""

from __future__ import annotations

import http.client
import json
import threading

import numpy as np
import pytest

from vbert.finesse.metrics.rss import bottom_up, sample_score, similarity_matrix, top_down
from vbert.lab import Lab, LabInputError, LabLimits, is_loopback, make_server
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
