"""Reading datasets back: Hugging Face `datasets`, the torch-friendly loaders and the collate."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader

from vbert.data.datasets import (
    CommonOptions,
    build_article_sequences,
    build_atomic,
    build_n_to_one,
    collate_vectors,
    load_pairs,
    load_sequences,
)
from vbert.testing.toy import ToyEmbedder, toy_articles

OPTIONS = CommonOptions(
    articles_per_shard=4,
    split_rule=lambda a: "test" if a.id.endswith("3") else "train",
    split_spec="ends in 3",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("built")
    toy = ToyEmbedder(dim=8, max_tokens=64)
    corpus = toy_articles(9, min_words=20, max_words=120)
    build_article_sequences(corpus, toy, root / "seq", chunk_tokens=10, min_tokens=0, options=OPTIONS)
    build_n_to_one(corpus, toy, root / "pairs", max_chunks=4, chunk_tokens=10, options=OPTIONS)
    build_atomic(corpus, toy, root / "atomic", window_tokens=20, options=OPTIONS)
    torch.set_num_threads(threads)
    return root


def test_hugging_face_datasets_reads_the_folders(built, tmp_path):
    import datasets

    for name in ("seq", "pairs", "atomic"):
        files = sorted(str(p) for p in (built / name / "data").glob("train-*.parquet"))
        plain = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path))
        assert len(plain) == sum(pq.read_metadata(f).num_rows for f in files)
        by_card = datasets.load_dataset(str(built / name), cache_dir=str(tmp_path))
        assert set(by_card) == {"train", "test"} and len(by_card["train"]) == len(plain)
    tokens = datasets.load_dataset(str(built / "atomic"), "tokens", split="train", cache_dir=str(tmp_path))
    assert tokens.column_names == ["row", "token_id", "token", "embedding"]


def test_load_sequences_gives_float32_inputs_and_lengths(built, tmp_path):
    sequences = load_sequences(built / "seq", cache_dir=tmp_path)
    row = sequences[0]
    assert row["inputs"].dtype == np.float32 and row["inputs"].shape == (row["length"], 8)
    assert row["length"] == len(row["token_counts"]) and row["split"] == "train"
    assert sequences.lengths.tolist() == [sequences[i]["length"] for i in range(len(sequences))]
    np.testing.assert_allclose(np.linalg.norm(row["inputs"], axis=1), 1.0, atol=1e-2)
    assert sequences[-1]["id"] == sequences[len(sequences) - 1]["id"]
    with pytest.raises(IndexError):
        sequences[len(sequences)]
    streamed = list(load_sequences(built / "seq", streaming=True))
    assert [r["id"] for r in streamed] == [sequences[i]["id"] for i in range(len(sequences))]
    np.testing.assert_array_equal(streamed[2]["inputs"], sequences[2]["inputs"])
    assert len(load_sequences(built / "seq", split="test", cache_dir=tmp_path)) == 1


def test_pairs_batch_through_a_dataloader(built, tmp_path):
    pairs = load_pairs(built / "pairs", cache_dir=tmp_path)
    batch = next(iter(DataLoader(pairs, batch_size=5, collate_fn=collate_vectors)))
    assert batch["inputs"].shape[0] == 5 and batch["inputs"].dtype == torch.float32
    assert batch["target"].shape == (5, 8)
    assert torch.equal(batch["attention_mask"].sum(1), batch["length"])
    for i in range(5):
        n = int(batch["length"][i])
        assert torch.equal(batch["inputs"][i, :n], torch.from_numpy(pairs[i]["inputs"]))
        assert not batch["inputs"][i, n:].any()


def test_atomic_pairs_get_their_token_vectors_back(built, tmp_path):
    pairs = load_pairs(built / "atomic", cache_dir=tmp_path)
    tokens = pq.read_table(built / "atomic" / "tokens").sort_by("row")
    table = np.asarray(tokens.column("embedding").to_pylist(), dtype=np.float32)
    raw = pq.read_table(sorted((built / "atomic" / "data").glob("train-*.parquet"))[0]).to_pylist()
    row = pairs[3]
    assert row["inputs"].shape == (row["length"], 8)
    np.testing.assert_array_equal(row["inputs"], table[raw[3]["token_rows"]])
    streamed = next(iter(load_pairs(built / "atomic", streaming=True)))
    np.testing.assert_array_equal(streamed["inputs"], pairs[0]["inputs"])


def test_wrong_loader_or_split_is_explained(built):
    with pytest.raises(ValueError, match="use load_pairs"):
        load_sequences(built / "pairs")
    with pytest.raises(ValueError, match="use load_sequences"):
        load_pairs(built / "seq")
    with pytest.raises(ValueError, match="its splits are: test, train"):
        load_pairs(built / "pairs", split="validation", streaming=True)
    with pytest.raises(ValueError, match="empty batch"):
        collate_vectors([])
