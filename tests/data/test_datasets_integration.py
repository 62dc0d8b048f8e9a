"""The three builders with the real default embedder (multilingual-e5-small) on a little real text."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from vbert.data.article import Article
from vbert.data.datasets import (
    CommonOptions,
    build_article_sequences,
    build_atomic,
    build_n_to_one,
    load_pairs,
    load_sequences,
)

pytestmark = pytest.mark.integration

TEXTS = {
    "en": "The Debian project is an association of individuals who have made common cause to create a free "
    "operating system. This operating system is called Debian.\n\n",
    "ko": "데비안 프로젝트는 자유 운영 체제를 만들기 위해 공동의 목적을 가진 개인들의 모임입니다. "
    "우리가 만든 운영 체제는 데비안이라고 합니다.\n\n",
    "ja": "Debian プロジェクトは、フリーなオペレーティングシステムを作成するという共通の目的を持った個人の集まりです。\n",
}


@pytest.fixture(scope="module")
def embedder():
    from vbert.embedders import load_embedder

    try:
        return load_embedder("default")
    except (OSError, ValueError, RuntimeError) as err:
        pytest.skip(f"the default embedder is not available here: {err}")


@pytest.fixture(scope="module")
def corpus() -> list[Article]:
    return [
        Article(id=f"it:{lang}", lang=lang, title=lang, text=text * 6, source="test", license="CC0-1.0")
        for lang, text in TEXTS.items()
    ]


def test_real_embedder_builds_all_three(tmp_path, embedder, corpus):
    options = CommonOptions(batch_size=16)
    seq = build_article_sequences(
        corpus, embedder, tmp_path / "seq", chunk_tokens=32, min_tokens=0, options=options
    )
    assert seq.manifest["text_prefix"] == "passage: " and seq.manifest["embedder"]["content_window"] == 508
    row = load_sequences(tmp_path / "seq", cache_dir=tmp_path / "hf")[0]
    chunks = embedder.split(corpus[0].text, 32)
    np.testing.assert_allclose(row["inputs"], embedder.encode(chunks), atol=3e-3)

    pairs = build_n_to_one(
        corpus, embedder, tmp_path / "pairs", max_chunks=10, chunk_tokens=50, options=options
    )
    assert pairs.manifest["stats"]["windows_over_content_window"] == 0
    assert all(p["target_tokens"] <= 508 for p in load_pairs(tmp_path / "pairs", streaming=True))

    atomic = build_atomic(corpus, embedder, tmp_path / "atomic", tree_depth=2, options=options)
    assert atomic.manifest["params"]["tokenization"] == "tokenizer"
    tokens = load_pairs(tmp_path / "atomic", cache_dir=tmp_path / "hf")
    table = pq.read_table(tmp_path / "atomic" / "tokens").to_pylist()
    assert all(t["token"].strip() for t in table)  # the lone "▁" is not an input
    assert all(t["token"] == embedder.tokenizer.decode([t["token_id"]]) for t in table)
    whole = [r for r in (tokens[i] for i in range(len(tokens))) if r["span"] == "prefix" and r["start"] == 0]
    assert max(r["length"] for r in whole) > 100 and all(r["target_tokens"] <= 508 for r in whole)
