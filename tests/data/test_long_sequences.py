import numpy as np
import pyarrow.parquet as pq
import pytest

from vbert.data.long_sequences import (
    LongSequencePlan,
    make_long_sequences,
    verify_long_sequences,
    write_long_sequences,
)
from vbert.errors import DataError, IntegrityError


def _articles(lengths, dim=4):
    return [(f"a{i}", np.full((n, dim), i, dtype=np.float32)) for i, n in enumerate(lengths)]


def test_rows_are_long_made_of_existing_vectors_and_seeded():
    articles = _articles([3, 40, 7, 200, 12, 5, 9, 30, 2, 60])
    plan = LongSequencePlan(min_length=16, max_length=64, seed=1)
    rows = make_long_sequences(articles, plan)
    kinds = [r.kind for r in rows]
    assert kinds.count("article") == 4  # the articles of 30, 40, 60 and 200 chunks
    assert all(16 <= len(r.vectors) <= 64 for r in rows if r.kind == "concat")
    for row in rows:
        # every position holds a vector of the source it is attributed to
        bounds = [*row.segment_starts, len(row.vectors)]
        for source, start, stop in zip(row.sources, bounds, bounds[1:], strict=False):
            assert (row.vectors[start:stop] == float(source[1:])).all()
    concat_sources = [s for r in rows if r.kind == "concat" for s in r.sources]
    assert len(concat_sources) == len(set(concat_sources))  # each article once in concatenations
    again = make_long_sequences(list(reversed(articles)), plan)
    assert [len(r.vectors) for r in make_long_sequences(articles, plan)] == [len(r.vectors) for r in rows]
    assert {r.kind for r in again} == {"article", "concat"}
    with pytest.raises(DataError):
        LongSequencePlan(min_length=20, max_length=10)
    with pytest.raises(DataError):
        make_long_sequences([("empty", np.zeros((0, 4)))])


def test_written_file_is_checksummed_and_readable(tmp_path):
    plan = LongSequencePlan(min_length=4, max_length=8)
    rows = make_long_sequences(_articles([5, 9, 3, 6, 2]), plan)
    path = tmp_path / "long" / "train.parquet"
    sidecar = write_long_sequences(rows, path, plan, source="unit test")
    assert verify_long_sequences(path)["sha256"] == sidecar["sha256"] and sidecar["source"] == "unit test"
    table = pq.read_table(path)
    assert table.column("length").to_pylist() == [len(r.vectors) for r in rows]
    first = np.asarray(table.column("embeddings")[0].as_py(), dtype=np.float32)
    assert np.array_equal(first, rows[0].vectors)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match="rebuild"):
        verify_long_sequences(path)


def test_stored_sequences_read_only_what_the_store_holds(tmp_path, fake_embedder):
    from vbert.cache import ChunkCache
    from vbert.data.article import Article
    from vbert.data.long_sequences import stored_sequences
    from vbert.long_document import LongDocumentEncoder
    from vbert.mergers import MeanPoolMerger

    text = lambda tag: " ".join(f"{tag}{i}" for i in range(150))  # noqa: E731
    articles = [Article(f"d{i}", "en", "", text(f"w{i}x"), "t", "MIT") for i in range(3)]
    with ChunkCache(tmp_path / "store.sqlite") as store:
        LongDocumentEncoder(fake_embedder, MeanPoolMerger(), cache=store).encode(
            [a.text for a in articles[:2]]
        )
        calls = fake_embedder.calls
        found = dict(stored_sequences(articles, fake_embedder, store))
    assert set(found) == {"d0", "d1"} and fake_embedder.calls == calls  # d2 was never embedded
    assert found["d0"].shape == (3, fake_embedder.dim)  # 150 words in 60-word chunks
