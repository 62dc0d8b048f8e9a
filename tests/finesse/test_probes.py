"""Probe sets: one reference tokenizer, distinct documents, enough-documents check, safe storage."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vbert.data.article import Article
from vbert.data.corpora.files import iter_files
from vbert.finesse.config import parse_config
from vbert.finesse.probes import (
    NotEnoughDocumentsError,
    ProbeSetError,
    build_probes,
    build_probes_from_config,
    check_compatible,
    chunks_per_sample,
    cut_head,
    documents_needed,
    expected_params,
    load_probes,
    save_probes,
)
from vbert.finesse.sources import iter_huggingface


def _build(corpus, embedder, **kwargs):
    settings = {"lengths": [3, 4, 5], "samples_per_length": 2, "token_per_sample": 8, "seed": 3}
    settings.update(kwargs)
    return build_probes(iter_files(corpus), embedder, **settings)


def test_chunks_are_heads_of_distinct_documents(corpus, fake_embedder):
    probe_set = _build(corpus, fake_embedder)
    assert probe_set.lengths == [3, 4, 5]
    texts = {a.id: a.text for a in iter_files(corpus)}
    for chunk in probe_set.chunks:
        assert chunk.n_tokens == 8
        assert chunk.text == " ".join(texts[chunk.doc_id].split()[:8])
    doc_ids = [c.doc_id for c in probe_set.chunks]
    assert len(doc_ids) == len(set(doc_ids)) == (3 + 4 + 5) * 2  # document_reuse none: all distinct
    for length in probe_set.lengths:
        samples = probe_set.samples(length)
        assert len(samples) == 2 and all(len(s) == length for s in samples)
        assert [c.position for c in samples[0]] == list(range(length))


def test_same_seed_same_probes_other_seed_other_probes(corpus, fake_embedder):
    first = _build(corpus, fake_embedder)
    assert _build(corpus, fake_embedder).content_hash == first.content_hash
    assert _build(corpus, fake_embedder, seed=4).content_hash != first.content_hash


def test_too_few_documents_fails_before_any_embedding(tmp_path, corpus_factory, fake_embedder):
    small = corpus_factory(tmp_path / "small", 10)
    with pytest.raises(NotEnoughDocumentsError) as err:
        _build(small, fake_embedder, max_similarity=0.9)
    message = str(err.value)
    assert "needs 24 documents" in message and "found only 10" in message
    assert "document_reuse: across_samples" in message
    assert fake_embedder.texts == 0


def test_short_documents_do_not_count(tmp_path, corpus_factory, fake_embedder):
    short = corpus_factory(tmp_path / "short", 40, words_per_doc=5)
    with pytest.raises(NotEnoughDocumentsError, match="found only 0"):
        _build(short, fake_embedder)


def test_reuse_across_samples_needs_only_the_largest_sample(tmp_path, corpus_factory, fake_embedder):
    small = corpus_factory(tmp_path / "small", 10)
    probe_set = _build(small, fake_embedder, document_reuse="across_samples")
    for length in probe_set.lengths:
        for sample in probe_set.samples(length):
            assert len({c.doc_id for c in sample}) == length
    assert documents_needed([3, 4, 5], 2, "rss", 8, "across_samples") == 5
    assert documents_needed([3, 4, 5], 2, "rss", 8, "none") == 24


def test_translations_of_one_page_never_share_a_sample(fake_embedder):
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    articles = [
        Article(
            id=f"{g}-{lang}",
            lang=lang,
            title="",
            text=" ".join(np.roll(words, g)),
            source="t",
            license="x",
            group=f"page{g}",
        )  # fmt: skip
        for g in range(6)
        for lang in ("en", "de")
    ]
    probe_set = build_probes(
        articles, fake_embedder, lengths=[3], samples_per_length=4, token_per_sample=5, seed=0,
        document_reuse="across_samples",
    )  # fmt: skip
    for sample in probe_set.samples(3):
        groups = [c.doc_id.split("-")[0] for c in sample]
        assert len(set(groups)) == 3


def test_max_similarity_filter_rejects_near_duplicates(tmp_path, fake_embedder):
    folder = tmp_path / "dups"
    folder.mkdir()
    base = "red green blue cyan magenta yellow black white"
    for i in range(30):
        # documents 0..14 are near-identical, 15..29 are distinct
        text = f"{base} n{i}" if i < 15 else " ".join(f"u{i}v{k}" for k in range(9))
        (folder / f"d{i:02d}.txt").write_text(text, encoding="utf-8")
    probe_set = build_probes(
        iter_files(folder), fake_embedder, lengths=[4], samples_per_length=3, token_per_sample=8, seed=1,
        max_similarity=0.8,
    )  # fmt: skip
    for sample in probe_set.samples(4):
        vectors = fake_embedder.encode([c.text for c in sample])
        sim = vectors @ vectors.T
        assert sim[~np.eye(4, dtype=bool)].max() <= 0.8 + 1e-6
        assert sum(c.text.startswith("red green") for c in sample) <= 1


def test_srs_samples_hold_probe_and_context_chunks(corpus, fake_embedder):
    probe_set = _build(corpus, fake_embedder, lengths=[4], metric="srs", group_amount=3)
    assert chunks_per_sample(4, "srs", 3) == 3 + 3 * 2
    assert all(len(s) == 9 for s in probe_set.samples(4))


def test_cut_head_uses_a_window_only_when_it_is_safe(fake_embedder):
    text = " ".join(f"w{i}" for i in range(5000))
    head, n = cut_head(text, 50, fake_embedder)
    assert n == 50 and head == " ".join(f"w{i}" for i in range(50))
    assert cut_head("too short", 50, fake_embedder) is None


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_round_trip_and_tampering_is_detected(tmp_path, corpus, fake_embedder, suffix):
    probe_set = _build(corpus, fake_embedder)
    path = save_probes(probe_set, tmp_path / f"probes{suffix}")
    loaded = load_probes(path)
    assert loaded.content_hash == probe_set.content_hash
    assert loaded.chunks == probe_set.chunks
    if suffix == ".jsonl":
        lines = path.read_text(encoding="utf-8").splitlines()
        row = json.loads(lines[3])
        row["text"] = row["text"].upper()
        lines[3] = json.dumps(row)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        table = pq.read_table(path)
        texts = table.column("text").to_pylist()
        texts[0] = "edited"
        table = table.set_column(table.schema.get_field_index("text"), "text", pa.array(texts))
        pq.write_table(table, path)
    with pytest.raises(ProbeSetError, match="content hash"):
        load_probes(path)


def test_config_mismatch_is_named(corpus, fake_embedder, make_config):
    probe_set = _build(corpus, fake_embedder, lengths=[3, 4, 5, 6], seed=7)
    config = parse_config(make_config(), check_paths=False)
    check_compatible(probe_set, expected_params(config), "p")
    other = parse_config(make_config(seed=8), check_paths=False)
    with pytest.raises(ProbeSetError, match="seed: probe set has 7, config has 8"):
        check_compatible(probe_set, expected_params(other), "p")


def test_build_from_config_writes_the_configured_file(make_config, fake_embedder):
    config = parse_config(make_config(), check_paths=True)
    probe_set, path = build_probes_from_config(config, tokenizer=fake_embedder)
    assert str(path) == config.probes.file
    assert load_probes(path).content_hash == probe_set.content_hash
    assert probe_set.params["tokenizer"] == {"name": "fake-words", "fingerprint": fake_embedder.fingerprint}
    assert probe_set.params["source"]["kind"] == "files"


def test_huggingface_source_on_a_local_parquet_file(tmp_path, make_config, fake_embedder):
    rows = [
        {"id": f"r{i}", "content": " ".join(f"t{i}x{k}" for k in range(12)), "language": "en"}
        for i in range(40)
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "train.parquet")
    data = make_config()
    data["probes"]["source"] = {
        "kind": "huggingface",
        "path": "parquet",
        "data_files": [str(tmp_path / "train.parquet")],
        "text_column": "content",
        "id_column": "id",
        "lang_column": "language",
    }
    config = parse_config(data, check_paths=True)
    articles = list(iter_huggingface(config.probes.source))
    assert [a.id for a in articles[:2]] == ["r0", "r1"] and articles[0].lang == "en"
    probe_set, _ = build_probes_from_config(config, tokenizer=fake_embedder)
    assert {c.doc_id for c in probe_set.chunks} <= {f"r{i}" for i in range(40)}
    data["probes"]["source"]["text_column"] = "body"
    with pytest.raises(ValueError, match="no column 'body'.*content"):
        list(iter_huggingface(parse_config(data, check_paths=False).probes.source))


def test_corpus_source_keeps_one_document_split(corpus):
    from vbert.data.splits import split_of
    from vbert.finesse.config import CorpusSource
    from vbert.finesse.probes import iter_source

    everything = list(iter_source(CorpusSource(kind="corpus", name=str(corpus))))
    held_out = list(iter_source(CorpusSource(kind="corpus", name=str(corpus), split="test", split_seed=3)))
    assert held_out and len(held_out) < len(everything)
    assert all(split_of(a, seed=3) == "test" for a in held_out)
