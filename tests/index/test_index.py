import numpy as np
import pytest

from tests.fixtures.index_corpus import counting_embedder, make_document
from vbert.errors import ConfigError, DataError
from vbert.index import Document, Index, read_path
from vbert.mergers import MeanPoolMerger
from vbert.testing import CountingEmbedder


def sync(index, root):
    return index.sync(read_path(root), [str(root.resolve())])


def test_first_run_then_nothing_to_do(tmp_path, corpus, embedder, merger):
    index = Index(tmp_path / "idx", embedder, merger)
    first = sync(index, corpus)
    assert (first.added, first.updated, first.unchanged, first.removed) == (6, 0, 0, 0)
    assert first.chunks_embedded == embedder.texts > 30
    assert index.ids() == ["doc0.md", "doc1.md", "doc2.md", "doc3.md", "doc4.md", "sub/deep.txt"]
    again = sync(index, corpus)
    assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 6, 0)
    assert (again.chunks_embedded, again.chunks_reused) == (0, 0)
    assert embedder.texts == first.chunks_embedded


def test_editing_one_paragraph_reembeds_one_or_two_chunks(tmp_path, corpus, embedder, merger):
    index = Index(tmp_path / "idx", embedder, merger)
    sync(index, corpus)
    before = index.store.document_vectors(index.ids())
    path = corpus / "doc2.md"
    paragraphs = path.read_text().split("\n\n")
    paragraphs[1] = paragraphs[1].replace(".", " and one more sentence.")
    path.write_text("\n\n".join(paragraphs))
    embedded_before = embedder.texts
    report = sync(index, corpus)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 1, 5, 0)
    assert 1 <= report.chunks_embedded <= 2 and embedder.texts - embedded_before == report.chunks_embedded
    chunks = len(index.chunking(path.read_text()))
    assert report.chunks_reused == chunks - report.chunks_embedded
    after = index.store.document_vectors(index.ids())
    assert not np.allclose(before["doc2.md"], after["doc2.md"])
    assert all(np.array_equal(before[i], after[i]) for i in before if i != "doc2.md")
    # The re-indexed vector is what a fresh index computes for the edited text.
    fresh = Index(tmp_path / "fresh", counting_embedder(), merger)
    fresh.update([Document("doc2.md", path.read_text(), title="doc2")])
    assert np.allclose(fresh.store.document_vectors(["doc2.md"])["doc2.md"], after["doc2.md"], atol=1e-6)


def test_renames_reuse_chunks_and_deletions_leave(tmp_path, corpus, embedder, merger):
    index = Index(tmp_path / "idx", embedder, merger)
    sync(index, corpus)
    chunks_of_doc3 = len(index.chunking((corpus / "doc3.md").read_text()))
    (corpus / "doc3.md").rename(corpus / "renamed.md")
    (corpus / "doc4.md").unlink()
    embedded = embedder.texts
    report = sync(index, corpus)
    assert (report.added, report.updated, report.unchanged, report.removed) == (1, 0, 4, 2)
    assert (report.chunks_embedded, report.chunks_reused) == (0, chunks_of_doc3)
    assert embedder.texts == embedded
    assert "renamed.md" in index.ids() and "doc3.md" not in index.ids() and "doc4.md" not in index.ids()
    referenced = {k for row in index.store.document_rows() for k in row.chunk_keys}
    assert index.store.chunk_keys() == referenced


def test_sync_removes_only_documents_of_the_given_sources(tmp_path, corpus, embedder, merger):
    other = tmp_path / "other"
    other.mkdir()
    (other / "note.txt").write_text(make_document(50))
    index = Index(tmp_path / "idx", embedder, merger)
    sync(index, corpus)
    sync(index, other)
    assert len(index) == 7
    (corpus / "doc0.md").unlink()
    report = sync(index, corpus)
    assert report.removed == 1 and len(index) == 6 and "note.txt" in index.ids()


def test_python_api_add_update_remove_search(tmp_path, embedder, merger):
    index = Index(tmp_path / "idx", embedder, merger)
    docs = [Document(f"d{i}", make_document(i)) for i in range(4)]
    assert index.add(docs).added == 4
    with pytest.raises(DataError, match="already in the index"):
        index.add(docs[:1])
    with pytest.raises(DataError, match="appears twice"):
        index.update([("x", "a b"), ("x", "c d")])
    report = index.update([("d0", make_document(0)), {"id": "d9", "text": make_document(9)}])
    assert (report.added, report.updated, report.unchanged) == (1, 0, 1)
    assert index.remove(["d1", "nope"]).removed == 1
    assert index.ids() == ["d0", "d2", "d3", "d9"]
    # A query that is one paragraph of d3 finds d3, with that paragraph's chunk as the snippet.
    paragraph = make_document(3).split("\n\n")[5]
    for rerank in (None, "maxsim"):
        hits = index.search(paragraph, k=2, rerank=rerank)
        assert len(hits) == 2 and hits[0].id == "d3"
        assert paragraph in make_document(3)[hits[0].start : hits[0].end]
        assert hits[0].chunk_score == max(h.chunk_score for h in hits)
    with pytest.raises(ConfigError, match="unknown re-ranker"):
        index.search("alpha", rerank="bm25")
    with pytest.raises(DataError, match="empty"):
        index.update([("blank", "  \n ")])


def test_an_index_refuses_another_embedder_or_merger(tmp_path, embedder, merger):
    Index(tmp_path / "idx", embedder, merger).update([("a", make_document(1))])
    with pytest.raises(ConfigError, match="built with merger 'mean-pool-weighted'"):
        Index(tmp_path / "idx", embedder, MeanPoolMerger())
    with pytest.raises(ConfigError, match="built with embedder"):
        Index(tmp_path / "idx", counting_embedder(dim=8), merger)
    reopened = Index(tmp_path / "idx", embedder, merger)
    assert reopened.ids() == ["a"]


def test_lost_chunk_cache_is_refilled_from_the_chunk_table(tmp_path, corpus, embedder, merger):
    index = Index(tmp_path / "idx", embedder, merger)
    sync(index, corpus)
    index.close()
    for path in (tmp_path / "idx").glob("chunk-cache.sqlite*"):
        path.unlink()
    text = (corpus / "doc1.md").read_text()
    (corpus / "doc1.md").write_text(text + "\n\nA new closing paragraph.")
    index = Index(tmp_path / "idx", embedder, merger)
    report = sync(index, corpus)
    assert report.updated == 1 and 1 <= report.chunks_embedded <= 2


def test_content_indexed_before_is_laid_out_from_the_cache_without_the_tokenizer(tmp_path, merger):
    embedder = CountingEmbedder(counting_embedder())
    index = Index(tmp_path / "idx", embedder, merger)
    text = make_document(7)
    index.add([Document("a.md", text)])
    expected = index.store.document_rows(with_vectors=True)[0]
    # Edited, then reverted; then removed, and added back under another id and title: the earlier
    # content's layout comes from the chunk cache (ChunkCache.get_documents, the mechanism
    # LongDocumentEncoder uses), so it is neither chunked nor embedded again.
    index.update([Document("a.md", text + "\n\nOne more closing paragraph.")])
    tokenised, embedded = embedder.tokenised, sum(embedder.counts.values())
    reverted = index.update([Document("a.md", text)])
    index.remove(["a.md"])
    assert len(index) == 0 and not index.store.chunk_keys()  # its chunk rows were pruned
    readded = index.add([Document("b.md", text, title="B")])
    assert (embedder.tokenised, sum(embedder.counts.values())) == (tokenised, embedded)
    chunks = len(expected.chunk_keys)
    assert (reverted.updated, reverted.chunks_embedded, reverted.chunks_reused) == (1, 0, chunks)
    assert (readded.added, readded.chunks_embedded, readded.chunks_reused) == (1, 0, chunks)
    row = index.store.document_rows(with_vectors=True)[0]
    assert (row.chunk_keys, row.chunk_tokens) == (expected.chunk_keys, expected.chunk_tokens)
    assert (row.chunk_starts, row.chunk_ends) == (expected.chunk_starts, expected.chunk_ends)
    np.testing.assert_allclose(row.vector, expected.vector, atol=1e-6)
    # The chunk table's texts (the snippets) are restored from the recorded spans.
    stored = index.store.chunk_rows(row.chunk_keys)
    assert [stored[k][0] for k in row.chunk_keys] == [c.text for c in index.chunking(text)]
