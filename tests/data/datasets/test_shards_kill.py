"""The real thing: SIGKILL a build mid-way, run it again, get the bytes of an uninterrupted build."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import vbert
from vbert.data.datasets import (
    CommonOptions,
    ShardAssignment,
    build_article_sequences,
    build_atomic,
    build_n_to_one,
)
from vbert.testing.toy import ToyEmbedder, toy_articles

N_ARTICLES, PER_SHARD, BATCH = 16, 2, 4

# The same build as `build()` below, with a slow embedder so that the kill lands mid-way.
WORKER = """
import sys, torch
torch.set_num_threads(int(sys.argv[3]))
sys.path.insert(0, sys.argv[4])
from test_shards_kill import build
build(sys.argv[1], sys.argv[2], seconds_per_batch=0.05)
"""


def build(kind: str, out: str | Path, seconds_per_batch: float = 0.0):
    embedder = ToyEmbedder(dim=8, max_tokens=64, seconds_per_batch=seconds_per_batch)
    corpus = toy_articles(N_ARTICLES, min_words=30, max_words=150)
    options = CommonOptions(
        articles_per_shard=PER_SHARD,
        batch_size=BATCH,
        split_rule=lambda a: "test" if a.id.endswith("7") else "train",
        split_spec="test = ids ending in 7",
    )
    one = ShardAssignment()
    if kind == "articles":
        return build_article_sequences(
            corpus, embedder, out, chunk_tokens=8, min_tokens=0, options=options, assignment=one
        )
    if kind == "n-to-1":
        return build_n_to_one(
            corpus, embedder, out, max_chunks=5, chunk_tokens=10, options=options, assignment=one
        )
    return build_atomic(
        corpus, embedder, out, window_tokens=24, tokens_per_shard=16, options=options, assignment=one
    )


def snapshot(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("articles", marks=pytest.mark.slow),
        "n-to-1",
        pytest.param("atomic", marks=pytest.mark.slow),
    ],
)
def test_kill_9_then_rerun_is_byte_identical_to_an_uninterrupted_build(tmp_path, kind):
    killed = tmp_path / "killed"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(vbert.__file__).resolve().parents[1]), env.get("PYTHONPATH", "")]
    )
    process = subprocess.Popen(
        [
            sys.executable,
            str(script),
            kind,
            str(killed),
            str(torch.get_num_threads()),
            str(Path(__file__).parent),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    while not list((killed / ".state").glob("data-*.json")):  # at least one article shard finished
        assert process.poll() is None, f"the build exited before it could be killed: {process.stderr.read()}"
        assert time.monotonic() < deadline, "the build made no progress in 240 s"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "manifest.json").exists()
    finished_before = {p.stem for p in (killed / ".state").glob("*.json")}

    rerun = build(kind, killed)
    assert set(rerun.reused) == finished_before  # finished shards are verified and kept, not redone
    assert rerun.built, "the kill landed after the build had finished: nothing was left to resume"

    build(kind, tmp_path / "uninterrupted")
    assert snapshot(killed) == snapshot(tmp_path / "uninterrupted")
