"""vbert.testing: light at import, and its doubles keep the promises the tests rely on."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from vbert.testing import CountingEmbedder, DecayMerger, WordHashEmbedder, write_topic_corpus


def test_importing_it_loads_nothing_beyond_import_vbert_and_builds_nothing():
    code = (
        "import sys, vbert\n"
        "before = set(sys.modules)\n"
        "import vbert.testing\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before} - {'vbert'}\n"
        "heavy = new & {'torch', 'transformers', 'tokenizers', 'pyarrow', 'datasets', 'pandas'}\n"
        "assert not heavy, heavy\n"
        "assert 'vbert.testing.toy' not in sys.modules and 'vbert.testing.tiny_models' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_word_hash_embedder_is_deterministic_and_truncates_at_its_window():
    a, b = WordHashEmbedder(8, content_window=3), WordHashEmbedder(8, content_window=3)
    vectors = a.encode(["red green blue", "red green blue yellow"])
    np.testing.assert_array_equal(vectors, b.encode(["red green blue", "red green blue yellow"]))
    np.testing.assert_array_equal(vectors[0], vectors[1])  # "yellow" is past the window
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-6)
    assert (a.calls, a.texts, a.counts["red green blue"]) == (1, 2, 1)
    assert a.split("a b c d e", 2) == ["a b", "c d", "e"] and a.count_tokens("a b c") == 3


def test_counting_embedder_counts_each_text_and_delegates():
    counting = CountingEmbedder(WordHashEmbedder(8))
    counting.encode(["x y", "x y", "z"])
    assert counting.counts == {"x y": 2, "z": 1} and counting.dim == 8
    assert counting.count_tokens("a b") == 2 and counting.split("a b c", 2) == ["a b", "c"]
    assert counting.tokenised == 2


def test_decay_merger_merge_and_merge_batch_are_two_codes_that_agree():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=np.float32)
    merger = DecayMerger()
    batched = merger.merge_batch(x, mask)
    np.testing.assert_allclose(batched[0], merger.merge(x[0]), rtol=1e-5)
    np.testing.assert_allclose(batched[1], merger.merge(x[1, :3]), rtol=1e-5)


def test_topic_corpus_is_the_same_for_the_same_seed(tmp_path):
    first = write_topic_corpus(tmp_path / "a", 7, seed=3)
    second = write_topic_corpus(tmp_path / "b", 7, seed=3)
    names = sorted(p.name for p in first.iterdir())
    assert len(names) == 7
    assert all((first / n).read_bytes() == (second / n).read_bytes() for n in names)
