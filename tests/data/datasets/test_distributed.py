"""Several processes share one build: round-robin shard ownership, rank 0 writes the manifest."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vbert
from vbert.data.datasets import CommonOptions, ShardAssignment, assignment_from_environment, build_n_to_one
from vbert.testing.toy import ToyEmbedder, toy_articles

N_ARTICLES, PER_SHARD = 14, 3  # 5 shards

WORKER = f"""
import json, sys, torch
torch.set_num_threads(int(sys.argv[2]))
from vbert.data.datasets import CommonOptions, build_n_to_one
from vbert.testing.toy import ToyEmbedder, toy_articles
result = build_n_to_one(
    toy_articles({N_ARTICLES}, min_words=10, max_words=120), ToyEmbedder(dim=8, max_tokens=64), sys.argv[1],
    max_chunks=4, chunk_tokens=10, options=CommonOptions(articles_per_shard={PER_SHARD}),
)
print(json.dumps({{"built": result.built, "manifest": result.manifest is not None, "pending": result.pending}}))
"""


def snapshot(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def reference(folder: Path):
    return build_n_to_one(
        toy_articles(N_ARTICLES, min_words=10, max_words=120),
        ToyEmbedder(dim=8, max_tokens=64),
        folder,
        max_chunks=4,
        chunk_tokens=10,
        options=CommonOptions(articles_per_shard=PER_SHARD),
        assignment=ShardAssignment(),
    )


def launch(tmp_path: Path, out: Path, rank: int, extra_env: dict[str, str]) -> subprocess.Popen:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {
        k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    }
    src = str(Path(vbert.__file__).resolve().parents[1])
    env.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": "2",
            "PYTHONPATH": os.pathsep.join([src, env.get("PYTHONPATH", "")]),
        }
    )
    env.update(extra_env)
    return subprocess.Popen(
        [sys.executable, str(script), str(out), str(torch.get_num_threads())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_round_robin_ownership():
    ranks = [ShardAssignment(r, 3) for r in range(3)]
    assert [a.owned(8) for a in ranks] == [[0, 3, 6], [1, 4, 7], [2, 5]]
    assert all(sum(a.owns(i) for a in ranks) == 1 for i in range(20))
    assert ranks[0].is_main and not ranks[1].is_main
    with pytest.raises(ValueError, match="RANK and WORLD_SIZE"):
        ShardAssignment(2, 2)


def test_assignment_reads_the_environment(monkeypatch):
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert assignment_from_environment() == ShardAssignment(1, 4, synchronized=False)
    monkeypatch.setenv("WORLD_SIZE", "four")
    with pytest.raises(ValueError, match="WORLD_SIZE='four' is not an integer"):
        assignment_from_environment()
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert assignment_from_environment() == ShardAssignment(0, 1)


def test_two_hand_started_ranks_then_a_manifest_step_match_one_process(tmp_path):
    out = tmp_path / "shared"
    workers = [launch(tmp_path, out, rank, {}) for rank in (0, 1)]
    results = [finish(w) for w in workers]
    assert results[0]["built"] == ["data-00000", "data-00002", "data-00004"]
    assert results[1]["built"] == ["data-00001", "data-00003"]
    assert not results[1]["manifest"]
    # rank 0 writes the manifest only if rank 1 was already done; a plain rerun verifies and finishes
    final = build_n_to_one(
        toy_articles(N_ARTICLES, min_words=10, max_words=120),
        ToyEmbedder(dim=8, max_tokens=64),
        out,
        max_chunks=4,
        chunk_tokens=10,
        options=CommonOptions(articles_per_shard=PER_SHARD),
        assignment=ShardAssignment(),
    )
    assert final.built == [] and len(final.reused) == 5 and final.manifest is not None
    assert reference(tmp_path / "single").manifest == final.manifest
    assert snapshot(out) == snapshot(tmp_path / "single")


def test_a_gloo_process_group_lets_rank_0_write_the_manifest(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "GLOO_SOCKET_IFNAME": "lo"}
    out = tmp_path / "shared"
    workers = [launch(tmp_path, out, rank, env) for rank in (0, 1)]
    results = [finish(w) for w in workers]
    assert results[0]["manifest"] and not results[1]["manifest"]
    assert sorted(results[0]["built"] + results[1]["built"]) == [f"data-{i:05d}" for i in range(5)]
    reference(tmp_path / "single")
    assert snapshot(out) == snapshot(tmp_path / "single")
