"""The Ray engine on a local 2-CPU Ray instance (one session for the module): same vectors as one process, resume."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.fixtures.index_corpus import write_corpus
from tests.fixtures.index_ray_worker import RAY_DOCUMENTS, RAY_RULE
from vbert.cli.main import app
from vbert.embedders import load_embedder
from vbert.index import Index
from vbert.index.ray_engine import embed_on_ray
from vbert.index.shards import read_chunk_vectors, read_manifest

ray = pytest.importorskip("ray")
WORKER = Path(__file__).resolve().parents[1] / "fixtures" / "index_ray_worker.py"
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


def rows_by_chunk(ids, chunk_index, vectors):
    order = sorted(range(len(ids)), key=lambda i: (ids[i], chunk_index[i]))
    return [(ids[i], chunk_index[i]) for i in order], vectors[order]


def test_vbert_embed_on_ray_gives_the_single_process_vectors(tmp_path, tiny_model_dir):
    corpus = write_corpus(tmp_path / "docs", documents=4)
    common = ["--embedder", str(tiny_model_dir), "--chunk-tokens", "48"]
    single = runner.invoke(app, ["embed", str(corpus), "-o", str(tmp_path / "single.npy"), *common])
    assert single.exit_code == 0, single.output
    args = [
        "embed",
        str(corpus),
        "-o",
        str(tmp_path / "ray.npy"),
        *common,
        "--engine",
        "ray",
        "--workers",
        "2",
    ]
    distributed = runner.invoke(app, args)
    assert distributed.exit_code == 0, distributed.output
    loaded = {}
    for name in ("single", "ray"):
        meta = json.loads((tmp_path / f"{name}.ids.json").read_text())
        loaded[name] = rows_by_chunk(meta["ids"], meta["chunk_index"], np.load(tmp_path / f"{name}.npy"))
    assert loaded["single"][0] == loaded["ray"][0] and len(loaded["ray"][0]) > 20
    cosines = (loaded["single"][1] * loaded["ray"][1]).sum(axis=1)
    assert cosines.min() >= 0.9999
    assert len(read_manifest(tmp_path / "ray.npy.shards")["shards"]) == 1  # 5 documents, 64 per shard


def test_a_killed_run_resumes_without_recomputing_finished_shards(tmp_path, tiny_model_dir):
    shards = tmp_path / "shards"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(Path.cwd() / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    address = ray.get_runtime_context().gcs_address
    run = subprocess.run(
        [sys.executable, str(WORKER), address, str(tiny_model_dir), str(shards), "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == -9, run.stderr[-3000:]
    finished = {p.name: p.stat().st_mtime_ns for p in shards.glob("shard-*.parquet")}
    assert len(finished) >= 2 and not (shards / "manifest.json").exists()

    embedder = load_embedder(str(tiny_model_dir))
    resumed = embed_on_ray(
        RAY_DOCUMENTS, shards, embedder, str(tiny_model_dir), RAY_RULE, documents_per_shard=2
    )
    assert (resumed.shards, resumed.reused, resumed.computed) == (6, len(finished), 6 - len(finished))
    assert all(shards.joinpath(name).stat().st_mtime_ns == mtime for name, mtime in finished.items())
    table, vectors = read_chunk_vectors(shards)
    chunks = [c.text for _, text in RAY_DOCUMENTS for c in RAY_RULE.chunks(embedder, text)]
    assert table["text"].to_pylist() == chunks
    assert np.allclose(vectors, embedder.encode(chunks), atol=1e-5)


def test_vbert_index_on_ray_matches_the_local_index(tmp_path, tiny_model_dir):
    corpus = write_corpus(tmp_path / "docs", documents=3)
    common = ["--embedder", str(tiny_model_dir), "--merger", "mean", "--chunk-tokens", "64", "--json"]
    reports = {}
    for engine in ("local", "ray"):
        args = ["index", str(corpus), "--index", str(tmp_path / engine), *common, "--engine", engine]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        reports[engine] = json.loads(result.stdout)
    assert reports["ray"]["added"] == reports["local"]["added"] == 4
    assert reports["ray"]["chunks_embedded"] == reports["local"]["chunks_embedded"] > 10
    local, distributed = Index(tmp_path / "local"), Index(tmp_path / "ray")
    ids = local.ids()
    assert distributed.ids() == ids and not (tmp_path / "ray" / "shards").exists()
    a, b = local.store.document_vectors(ids), distributed.store.document_vectors(ids)
    assert min(float(a[i] @ b[i]) for i in ids) >= 0.9999
