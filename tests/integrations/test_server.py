"""The OpenAI-compatible server, exercised over real HTTP with the real openai client and httpx."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import uvicorn

import vbert
from vbert.integrations.server import ServerSettings, create_app

LONG_TEXT = " ".join(
    f"the long document {i} is a text with a vector embedding of the passage" for i in range(60)
)


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@pytest.fixture
def encoder(tiny_embedder, tmp_path: Path) -> vbert.LongDocumentEncoder:
    return vbert.LongDocumentEncoder(tiny_embedder, "mean", cache=tmp_path / "cache.sqlite")


@pytest.fixture
def url(encoder) -> Iterator[str]:
    with running(
        create_app(encoder, ServerSettings(model_name="tiny-vbert", max_request_bytes=200_000))
    ) as base:
        yield base


def client(url: str, **kwargs) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{url}/v1", api_key=kwargs.pop("api_key", "unused"), max_retries=0, **kwargs
    )


def test_openai_client_default_base64_and_float(url, encoder):
    texts = ["hello world", "the passage of the text", LONG_TEXT]
    expected = encoder.encode(texts)
    default = client(url).embeddings.create(model="anything", input=texts)  # the client asks for base64
    as_float = client(url).embeddings.create(model="anything", input=texts, encoding_format="float")
    for response in (default, as_float):
        assert response.model == "tiny-vbert"
        assert [d.index for d in response.data] == [0, 1, 2]
        got = np.array([d.embedding for d in response.data], dtype=np.float32)
        np.testing.assert_allclose(got, expected, atol=1e-5)
        tokens = sum(encoder.embedder.count_tokens(t) for t in texts)
        assert response.usage.prompt_tokens == response.usage.total_tokens == tokens


def test_base64_is_little_endian_float32(url, encoder):
    raw = httpx.post(
        f"{url}/v1/embeddings", json={"input": "hello world", "encoding_format": "base64"}
    ).json()
    vector = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vector, encoder.encode(["hello world"])[0], atol=1e-6)


def test_long_input_is_chunked_and_merged_not_truncated(url, encoder):
    chunks = encoder.chunk(LONG_TEXT)
    tokens = encoder.embedder.count_tokens(LONG_TEXT)
    assert len(chunks) > 3 and tokens > 3 * encoder.embedder.content_window
    response = client(url).embeddings.create(model="m", input=LONG_TEXT, encoding_format="float")
    assert response.usage.prompt_tokens == tokens
    got = np.array(response.data[0].embedding, dtype=np.float32)
    np.testing.assert_allclose(got, encoder.encode([LONG_TEXT])[0], atol=1e-5)
    # The merged vector is the mean of all chunks, not the first chunk's vector.
    first = encoder.embed_chunks(chunks[:1])[0]
    assert float(got @ first) < 0.999
    assert len(encoder.cache) == len(set(chunks))  # the server filled the persistent chunk cache


def test_queries_use_the_query_prefix(url, encoder):
    response = client(url).embeddings.create(
        model="m", input=["hello world"], encoding_format="float", extra_body={"input_type": "query"}
    )
    expected = encoder.embedder.encode_queries(["hello world"])[0]
    np.testing.assert_allclose(np.array(response.data[0].embedding), expected, atol=1e-5)
    tei = httpx.post(f"{url}/embed", json={"inputs": "hello world", "prompt_name": "query"}).json()
    np.testing.assert_allclose(np.array(tei[0]), expected, atol=1e-5)


def test_chunk_cache_is_used_across_requests(fake_embedder, tmp_path):
    encoder = vbert.LongDocumentEncoder(fake_embedder, "mean", cache=tmp_path / "cache.sqlite")
    text = " ".join(f"word{i}" for i in range(200))  # 4 chunks of the fake embedder's 60 words
    with running(create_app(encoder)) as base:
        first = client(base).embeddings.create(model="m", input=text)
        calls = fake_embedder.calls
        second = client(base).embeddings.create(model="m", input=[text, text])
    assert calls >= 1 and fake_embedder.calls == calls  # second request: every chunk from the cache
    assert first.data[0].embedding == second.data[0].embedding == second.data[1].embedding


def test_openai_style_errors(url):
    api = client(url)
    with pytest.raises(openai.BadRequestError) as caught:
        api.embeddings.create(model="m", input=["fine", "  "])
    assert caught.value.status_code == 400
    assert caught.value.body["type"] == "invalid_request_error" and "input[1]" in caught.value.body["message"]
    with pytest.raises(openai.BadRequestError, match="token-id input"):
        api.embeddings.create(model="m", input=[[1, 2, 3]])
    with pytest.raises(openai.BadRequestError, match="32-d"):
        api.embeddings.create(model="m", input="x", dimensions=8)
    with pytest.raises(openai.BadRequestError, match="encoding_format"):
        api.embeddings.create(model="m", input="x", encoding_format="int8")  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        api.completions.create(model="m", prompt="x")
    too_big = httpx.post(f"{url}/v1/embeddings", json={"input": "word " * 60_000})
    assert too_big.status_code == 413
    assert "200000 bytes" in too_big.json()["error"]["message"]

    def streamed_body() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
        yield b'{"input": "'
        for _ in range(100):
            yield b"word " * 1000
        yield b'"}'

    streamed = httpx.post(
        f"{url}/v1/embeddings", content=streamed_body(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413 and streamed.json()["error"]["type"] == "invalid_request_error"


def test_tei_routes(url, encoder):
    vectors = httpx.post(f"{url}/embed", json={"inputs": ["hello world", LONG_TEXT]}).json()
    np.testing.assert_allclose(np.array(vectors), encoder.encode(["hello world", LONG_TEXT]), atol=1e-5)
    tokens = httpx.post(f"{url}/tokenize", json={"inputs": "hello world"}).json()
    assert [t["special"] for t in tokens[0]] == [True, False, False, True]
    assert [t["text"] for t in tokens[0][1:3]] == ["\u2581hello", "\u2581world"]
    assert "hello world"[tokens[0][2]["start"] : tokens[0][2]["stop"]].strip() == "world"
    plain = httpx.post(
        f"{url}/tokenize", json={"inputs": ["hello world"], "add_special_tokens": False}
    ).json()
    assert len(plain[0]) == encoder.embedder.count_tokens("hello world")
    info = httpx.get(f"{url}/info").json()
    assert info["model_id"] == "tiny-vbert" and info["max_input_length"] is None
    assert info["embedder"]["fingerprint"] == encoder.embedder.fingerprint
    assert info["merger"]["name"] == "mean-pool"
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    models = client(url).models.list()
    assert [m.id for m in models.data] == ["tiny-vbert"]
    bad = httpx.post(f"{url}/embed", json={"inputs": []})
    assert bad.status_code == 400 and bad.json()["error_type"] == "Validation"
    invalid = httpx.post(f"{url}/embed", json={"wrong": 1})
    assert invalid.status_code == 422 and "inputs" in invalid.json()["error"]


def test_api_key(encoder):
    with running(create_app(encoder, ServerSettings(api_key="s3cret"))) as base:
        with pytest.raises(openai.AuthenticationError):
            client(base, api_key="wrong").embeddings.create(model="m", input="hello")
        assert httpx.post(f"{base}/embed", json={"inputs": "hello"}).status_code == 401
        assert httpx.get(f"{base}/health").status_code == 200
        response = client(base, api_key="s3cret").embeddings.create(model="m", input="hello")
        assert len(response.data[0].embedding) == encoder.embedder.dim


def test_timeout_gives_504(encoder):
    settings = ServerSettings(request_timeout=0.001, max_wait=0.05)  # the batcher waits longer than allowed
    with running(create_app(encoder, settings)) as base:
        with pytest.raises(openai.InternalServerError) as caught:
            client(base).embeddings.create(model="m", input="hello")
        assert caught.value.status_code == 504 and caught.value.body["type"] == "timeout_error"
        assert httpx.get(f"{base}/health").status_code == 200


def test_concurrent_burst_is_batched(encoder):
    texts = [f"hello world {i} " + "the text of the passage " * (i % 7) for i in range(50)]
    expected = encoder.encode(texts)
    app = create_app(encoder, ServerSettings(max_wait=0.02))

    async def burst(base: str) -> list:
        async with openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0) as api:
            requests = [api.embeddings.create(model="m", input=text) for text in texts]
            return await asyncio.wait_for(asyncio.gather(*requests), timeout=60)

    with running(app) as base:
        responses = asyncio.run(burst(base))
        stats = httpx.get(f"{base}/info").json()["batching"]
    got = np.array([r.data[0].embedding for r in responses], dtype=np.float32)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert stats["requests"] == 50
    assert stats["batches"] < 50 and stats["largest_batch"] > 1  # requests shared encoder calls


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "fastapi", None)
    monkeypatch.delitem(sys.modules, "vbert.integrations.server")
    with pytest.raises(ImportError, match=r"pip install 'vbert\[server\]'"):
        importlib.import_module("vbert.integrations.server")


def _listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a socket listening on ``port``, from Linux's /proc/net/tcp."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(".".join(str(b) for b in reversed(bytes.fromhex(address))))
    return found


@pytest.mark.slow
def test_vbert_serve_command(tiny_model_dir, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "VBERT_API_KEY": "k", "VBERT_HOME": str(tmp_path)}
    command = [
        sys.executable,
        "-c",
        "from vbert.cli.main import app; app()",
        "serve",
        "--port",
        str(port),
        "--merger",
        "mean",
    ]
    process = subprocess.Popen(
        [*command, "--embedder", str(tiny_model_dir)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stderr.read()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            assert time.monotonic() < deadline, "vbert serve did not come up"
            time.sleep(0.2)
        response = client(base, api_key="k").embeddings.create(model="m", input=LONG_TEXT)
        assert len(response.data[0].embedding) == 32
        assert (tmp_path / "chunk-cache.sqlite").exists()
        if Path("/proc/net/tcp").exists():  # bound to loopback only, not to every interface
            assert _listening_addresses(port) == {"127.0.0.1"}
    finally:
        process.terminate()
        process.wait(30)


@pytest.mark.integration
def test_default_embedder_and_merger_over_openai(tmp_path):
    encoder = vbert.LongDocumentEncoder(
        vbert.load_embedder(), vbert.load_merger("default"), cache=tmp_path / "c"
    )
    documents = [
        "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar and oxygen. " * 40,
        "The Rhine flows from the Swiss Alps through Germany and the Netherlands into the North Sea. " * 40,
    ]
    with running(create_app(encoder)) as base:
        api = client(base)
        docs = api.embeddings.create(model="m", input=documents)
        query = api.embeddings.create(
            model="m", input="How do plants make sugar from light?", extra_body={"input_type": "query"}
        )
    vectors = np.array([d.embedding for d in docs.data], dtype=np.float32)
    assert all(len(encoder.chunk(d)) > 1 for d in documents)
    np.testing.assert_allclose(vectors, encoder.encode(documents), atol=1e-4)
    scores = vectors @ np.array(query.data[0].embedding, dtype=np.float32)
    assert scores[0] > scores[1]


def test_vbert_serve_refuses_bad_options(tiny_model_dir, tmp_path):
    from typer.testing import CliRunner

    from vbert.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["serve", "--max-batch", "0"])
    assert result.exit_code == 2 and "--max-batch" in result.output
    result = runner.invoke(app, ["serve", "--embedder", str(tiny_model_dir), "--merger", str(tmp_path)])
    assert result.exit_code == 2 and "no config.json" in result.output
