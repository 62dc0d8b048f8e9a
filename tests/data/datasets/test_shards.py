"""Shard store: deterministic bytes, checksums, resume of partial builds, refusals, disk full."""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vbert.data.datasets import (
    CommonOptions,
    DatasetMismatchError,
    DatasetValidationError,
    DiskFullError,
    build_article_sequences,
    validate_dataset,
)
from vbert.data.datasets.shards import write_parquet_atomically
from vbert.testing.toy import ToyEmbedder, toy_articles

OPTIONS = CommonOptions(articles_per_shard=3)


@pytest.fixture(scope="module")
def toy() -> ToyEmbedder:
    return ToyEmbedder(dim=8, max_tokens=64)


@pytest.fixture(scope="module")
def corpus():
    return toy_articles(10, min_words=10, max_words=80)


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (state records included), by relative path."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def build(folder: Path, toy, corpus, **kwargs):
    options = kwargs.pop("options", OPTIONS)
    return build_article_sequences(
        corpus, toy, folder, chunk_tokens=8, min_tokens=0, options=options, **kwargs
    )


def test_parquet_bytes_depend_only_on_the_table(tmp_path):
    table = pa.table(
        {"id": ["a", "b"], "v": pa.FixedSizeListArray.from_arrays(pa.array([1.0, 2, 3, 4], pa.float16()), 2)}
    )
    write_parquet_atomically(table, tmp_path / "one.parquet")
    write_parquet_atomically(table, tmp_path / "two.parquet")
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()
    assert not list(tmp_path.glob(".*"))  # no temporary files left behind
    assert pq.read_table(tmp_path / "one.parquet").equals(table)


def test_two_builds_are_byte_identical_and_a_rerun_does_nothing(tmp_path, toy, corpus):
    first = build(tmp_path / "a", toy, corpus)
    build(tmp_path / "b", toy, corpus)
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    assert first.built == [f"data-{i:05d}" for i in range(4)] and first.reused == []
    again = build(tmp_path / "a", toy, corpus)
    assert again.built == [] and len(again.reused) == 4
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    assert validate_dataset(tmp_path / "a").ok


def test_a_corrupted_shard_is_detected_and_only_it_is_rebuilt(tmp_path, toy, corpus):
    build(tmp_path, toy, corpus)
    reference = snapshot(tmp_path)
    victim = tmp_path / "data" / "train-00001.parquet"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(DatasetValidationError, match="train-00001.parquet: sha256 does not match"):
        validate_dataset(tmp_path)
    rerun = build(tmp_path, toy, corpus)
    assert rerun.built == ["data-00001"]
    assert snapshot(tmp_path) == reference


def test_truncated_or_missing_files_and_records_are_rebuilt(tmp_path, toy, corpus):
    build(tmp_path, toy, corpus)
    reference = snapshot(tmp_path)
    (tmp_path / "data" / "train-00000.parquet").write_bytes(b"PAR1")  # truncated
    (tmp_path / "data" / "train-00002.parquet").unlink()  # missing
    (tmp_path / ".state" / "data-00003.json").unlink()  # killed between the file rename and the record
    (tmp_path / "data" / ".train-00003.parquet.tmp-99999").write_bytes(b"half")  # killed mid-write
    (tmp_path / "manifest.json").unlink()
    with pytest.raises(DatasetValidationError, match="no manifest.json"):
        validate_dataset(tmp_path)
    rerun = build(tmp_path, toy, corpus)
    assert rerun.built == ["data-00000", "data-00002", "data-00003"]
    assert snapshot(tmp_path) == reference


def test_other_parameters_are_refused_unless_overwrite(tmp_path, toy, corpus):
    build(tmp_path, toy, corpus)
    with pytest.raises(DatasetMismatchError, match="other parameters"):
        build_article_sequences(corpus, toy, tmp_path, chunk_tokens=9, min_tokens=0, options=OPTIONS)
    with pytest.raises(DatasetMismatchError):
        build(tmp_path, toy, corpus, options=CommonOptions(articles_per_shard=3, seed=1))
    forced = CommonOptions(articles_per_shard=5, overwrite=True)
    result = build(tmp_path, toy, corpus, options=forced)
    assert len(result.built) == 2
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "train-00000.parquet",
        "train-00001.parquet",
    ]
    assert sorted(p.name for p in (tmp_path / ".state").iterdir()) == ["data-00000.json", "data-00001.json"]
    assert validate_dataset(tmp_path).rows == {"train": 10}


def test_a_smaller_corpus_leaves_no_stale_shards(tmp_path, toy, corpus):
    build(tmp_path, toy, corpus)
    result = build(tmp_path, toy, corpus[:4])
    assert result.built == ["data-00001"] and result.reused == ["data-00000"]
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [
        "train-00000.parquet",
        "train-00001.parquet",
    ]
    assert validate_dataset(tmp_path).rows == {"train": 4}


def test_disk_full_gives_a_clear_error_and_leaves_nothing_half_written(tmp_path, toy, corpus, monkeypatch):
    import vbert.data.datasets.shards as shards

    real_write = shards.pq.write_table
    calls = {"n": 0}

    def write_until_full(table, where, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            Path(where).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(table, where, **kwargs)

    folder = tmp_path / "full"
    monkeypatch.setattr(shards.pq, "write_table", write_until_full)
    with pytest.raises(DiskFullError, match="no space left.*run the same command again"):
        build(folder, toy, corpus)
    assert sorted(p.name for p in (folder / "data").iterdir()) == [
        "train-00000.parquet",
        "train-00001.parquet",
    ]
    assert sorted(p.name for p in (folder / ".state").iterdir()) == ["data-00000.json", "data-00001.json"]
    assert not (folder / "manifest.json").exists()
    monkeypatch.setattr(shards.pq, "write_table", real_write)
    rerun = build(folder, toy, corpus)
    assert rerun.reused == ["data-00000", "data-00001"] and rerun.built == ["data-00002", "data-00003"]
    build(tmp_path / "reference", toy, corpus)
    assert snapshot(tmp_path / "reference") == snapshot(folder)


def test_output_path_that_is_a_file_is_refused(tmp_path, toy, corpus):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        build(target, toy, corpus)


def test_manifest_lists_every_file_with_its_checksum(tmp_path, toy, corpus):
    result = build(tmp_path, toy, corpus)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest == result.manifest
    for shard in manifest["shards"]:
        for f in shard["files"]:
            assert hashlib.sha256((tmp_path / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    report = validate_dataset(tmp_path)
    assert report.files == 4 and report.kind == "article-sequences"
    (tmp_path / "data" / "stray-00000.parquet").write_bytes(b"x")
    assert "not listed" in validate_dataset(tmp_path, strict=False).problems[0]
