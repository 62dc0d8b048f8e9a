"""Training data adapters: Parquet layouts, synthetic specs, bucketing and the resumable batch plan."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vbert.train.data import ManifestDataset, PairDataset, VectorSequenceDataset, open_dataset
from vbert.train.synthetic import parse_spec, synthetic_dataset


def sequences(rng: np.random.Generator, count: int, d: int = 8) -> list[np.ndarray]:
    return [rng.standard_normal((int(rng.integers(1, 9)), d)).astype(np.float32) for _ in range(count)]


def nested_column(rows: list[np.ndarray], fixed: bool, dtype=pa.float32()) -> pa.Array:
    d = rows[0].shape[1]
    inner = pa.list_(dtype, d) if fixed else pa.list_(dtype)
    return pa.array([row.tolist() for row in rows], type=pa.list_(inner))


@pytest.mark.parametrize("layout", ["nested", "fixed", "flat", "float16"])
def test_sequences_from_parquet_layouts(tmp_path, layout):
    rows = sequences(np.random.default_rng(0), 12)
    if layout == "flat":
        table = pa.table(
            {
                "embeddings": pa.array([row.ravel().tolist() for row in rows], type=pa.list_(pa.float32())),
                "length": pa.array([len(row) for row in rows], type=pa.int32()),
            }
        )
    else:
        dtype = pa.float16() if layout == "float16" else pa.float32()
        table = pa.table({"embeddings": nested_column(rows, fixed=layout != "nested", dtype=dtype)})
    (tmp_path / "data").mkdir()
    pq.write_table(table.slice(0, 5), tmp_path / "data" / "train-00000.parquet")
    pq.write_table(table.slice(5), tmp_path / "data" / "train-00001.parquet")
    (tmp_path / "data" / ".train-00002.parquet.tmp-1").write_bytes(b"half-written")  # hidden temp: ignored

    dataset = open_dataset(str(tmp_path), "sequences")
    assert isinstance(dataset, VectorSequenceDataset)
    assert len(dataset) == 12 and dataset.dim == 8
    assert dataset.lengths.tolist() == [len(row) for row in rows]
    tolerance = 1e-3 if layout == "float16" else 0
    for i, row in enumerate(rows):
        item = dataset[i]["inputs"]
        assert item.dtype == np.float32
        np.testing.assert_allclose(item, row, atol=tolerance * 4, rtol=tolerance)
    assert dataset.fingerprint == open_dataset(str(tmp_path), "sequences").fingerprint


def test_pairs_from_parquet_and_content_fingerprint(tmp_path):
    rng = np.random.default_rng(1)
    rows = sequences(rng, 6)
    targets = rng.standard_normal((6, 8)).astype(np.float32)

    def write(targets: np.ndarray) -> None:
        columns = {
            "inputs": nested_column(rows, fixed=True),
            "target": pa.array(targets.tolist(), pa.list_(pa.float32(), 8)),
        }
        pq.write_table(pa.table(columns), tmp_path / "pairs.parquet")

    write(targets)
    dataset = open_dataset(str(tmp_path), "pairs")
    assert isinstance(dataset, PairDataset)
    np.testing.assert_array_equal(dataset[3]["inputs"], rows[3])
    np.testing.assert_array_equal(dataset[3]["target"], targets[3])
    before = dataset.fingerprint
    write(targets + 1.0)
    assert open_dataset(str(tmp_path), "pairs").fingerprint != before


def test_built_dataset_folders_are_read_by_split(tmp_path):
    """Folders with a manifest.json go through vbert.data.datasets: splits, atomic token tables, fingerprints."""
    from vbert.data.datasets import CommonOptions, build_article_sequences, build_atomic
    from vbert.testing.toy import ToyEmbedder, toy_articles

    embedder = ToyEmbedder(dim=8, max_tokens=32)
    articles = toy_articles(12, seed=0, max_words=80)
    options = CommonOptions(
        split_rule=lambda a: "validation" if int(a.id.rsplit(":", 1)[-1]) % 3 == 0 else "train",
        split_spec="every 3rd article in validation",
    )
    build_article_sequences(
        articles, embedder, tmp_path / "articles", chunk_tokens=4, min_tokens=0, options=options
    )
    build_atomic(articles, embedder, tmp_path / "atomic", options=options)

    train, validation = (
        open_dataset(str(tmp_path / "articles"), "sequences", split) for split in ("train", "validation")
    )
    assert isinstance(train, ManifestDataset) and train.dim == 8
    assert len(train) + len(validation) == 12 and train.fingerprint != validation.fingerprint
    row = train[1]["inputs"]
    assert row.dtype == np.float32 and row.shape == (train.lengths[1], 8)
    batch = train.__getitems__([0, 2])
    np.testing.assert_array_equal(batch[1]["inputs"], train[2]["inputs"])
    assert train.metadata["embedder"]["fingerprint"] == embedder.fingerprint

    pairs = open_dataset(str(tmp_path / "atomic"), "pairs")
    item = pairs[0]
    assert item["inputs"].shape == (pairs.lengths[0], 8) and item["target"].shape == (8,)
    with pytest.raises(ValueError, match="no rows in split 'test'"):
        open_dataset(str(tmp_path / "atomic"), "pairs", "test")
    with pytest.raises(ValueError, match="load_pairs"):
        open_dataset(str(tmp_path / "atomic"), "sequences")


def test_parquet_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        open_dataset(str(tmp_path / "missing"), "pairs")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no .parquet files"):
        open_dataset(str(tmp_path / "empty"), "pairs")
    rows = sequences(np.random.default_rng(0), 3)
    pq.write_table(pa.table({"vectors": nested_column(rows, fixed=False)}), tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="no column 'embeddings'"):
        open_dataset(str(tmp_path / "x.parquet"), "sequences")
    pq.write_table(pa.table({"embeddings": pa.array([[1.0, 2.0, 3.0]])}), tmp_path / "flat.parquet")
    with pytest.raises(ValueError, match="'length' column"):
        open_dataset(str(tmp_path / "flat.parquet"), "sequences")
    pq.write_table(pa.table({"inputs": nested_column(rows, fixed=False)}), tmp_path / "notarget.parquet")
    with pytest.raises(ValueError, match="no column 'target'"):
        open_dataset(str(tmp_path / "notarget.parquet"), "pairs")


def test_in_memory_datasets_and_kind_check():
    rows = sequences(np.random.default_rng(0), 4)
    dataset = VectorSequenceDataset.from_arrays(rows)
    np.testing.assert_array_equal(dataset[2]["inputs"], rows[2])
    with pytest.raises(ValueError, match="dimension"):
        VectorSequenceDataset.from_arrays([rows[0], rows[1][:, :4]])
    with pytest.raises(ValueError, match="one per row"):
        PairDataset.from_arrays(rows, np.zeros((3, 8), np.float32))
    with pytest.raises(ValueError, match="is a pairs dataset but this use needs sequences"):
        open_dataset("synthetic:pairs?n=4", "sequences")


def test_synthetic_specs():
    assert parse_spec("synthetic:articles?n=5&dim=4") == (
        "articles",
        {"n": 5, "dim": 4, "min_len": 4, "max_len": 24, "seed": 0},
    )
    for bad, message in [
        ("synthetic:tokens", "synthetic:articles"),
        ("synthetic:pairs?size=3", "unknown parameter 'size'"),
        ("synthetic:pairs?n=x", "must be an integer"),
        ("synthetic:pairs?min_len=5&max_len=2", "min_len <= max_len"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_spec(bad)
    a = synthetic_dataset("synthetic:pairs?n=20&dim=8&seed=3")
    b = synthetic_dataset("synthetic:pairs?n=20&dim=8&seed=3")
    assert (
        a.fingerprint == b.fingerprint != synthetic_dataset("synthetic:pairs?n=20&dim=8&seed=4").fingerprint
    )
    np.testing.assert_array_equal(a[7]["target"], b[7]["target"])
    np.testing.assert_allclose(np.linalg.norm(a[7]["inputs"], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(a.targets, axis=1), 1.0, rtol=1e-5)
