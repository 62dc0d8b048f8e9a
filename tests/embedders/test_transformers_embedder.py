"""TransformersEmbedder on a tiny random BERT with a real Unigram tokenizer."""

from __future__ import annotations

import logging
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vbert.embedders import Embedder, TransformersEmbedder, compute_fingerprint
from vbert.embedders.transformers_embedder import resolve_dtype
from vbert.testing.tiny_models import SAMPLE_CHARACTERS, save_tiny_model, tiny_vocab

TEXTS = [
    "hello world",
    "the long document is embedded as a vector",
    "안녕하세요 한국어 문장입니다",
    "こんにちは 日本語のテキストです",
    "你好 中文句子",
    "Äpfel und Öl für die Straße",
    "x",
    "the " * 40 + "end",
]


def _manual_mean(embedder: TransformersEmbedder, text: str) -> np.ndarray:
    tokenizer = embedder.tokenizer
    inputs = tokenizer([embedder.prefix + text], return_tensors="pt")
    with torch.inference_mode():
        hidden = embedder.model(**inputs).last_hidden_state[0]
    vector = hidden.mean(dim=0)
    return (vector / vector.norm()).numpy()


def test_satisfies_the_protocol(tiny_embedder: TransformersEmbedder) -> None:
    assert isinstance(tiny_embedder, Embedder)
    assert tiny_embedder.dim == 32
    assert tiny_embedder.max_tokens == 128


def test_encode_gives_unit_float32_rows(tiny_embedder: TransformersEmbedder) -> None:
    vectors = tiny_embedder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 32)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert np.linalg.matrix_rank(vectors) == len(TEXTS)


def test_mean_pooling_matches_a_manual_forward(tiny_embedder: TransformersEmbedder) -> None:
    vectors = tiny_embedder.encode(TEXTS, batch_size=4)
    for row, text in enumerate(TEXTS):
        np.testing.assert_allclose(vectors[row], _manual_mean(tiny_embedder, text), atol=1e-5)


def test_order_is_restored_after_length_sorting(tiny_embedder: TransformersEmbedder) -> None:
    shuffled = TEXTS[:]
    random.Random(3).shuffle(shuffled)
    forward = tiny_embedder.encode(TEXTS, batch_size=3)
    permuted = tiny_embedder.encode(shuffled, batch_size=3)
    for row, text in enumerate(shuffled):
        np.testing.assert_allclose(permuted[row], forward[TEXTS.index(text)], atol=1e-5)


def test_batch_size_invariance(tiny_embedder: TransformersEmbedder) -> None:
    reference = tiny_embedder.encode(TEXTS, batch_size=1)
    for batch_size in (2, 3, 64):
        assert np.abs(tiny_embedder.encode(TEXTS, batch_size=batch_size) - reference).max() <= 1e-5


@pytest.mark.parametrize("pooling", ["cls", "last"])
def test_cls_and_last_pooling(tiny_model_dir: Path, pooling: str) -> None:
    embedder = TransformersEmbedder(tiny_model_dir, pooling=pooling, device="cpu")
    texts = ["hello world", "the long document is embedded as a vector"]
    vectors = embedder.encode(texts, batch_size=2)
    inputs = embedder.tokenizer([embedder.prefix + texts[1]], return_tensors="pt")
    with torch.inference_mode():
        hidden = embedder.model(**inputs).last_hidden_state[0]
    expected = hidden[0] if pooling == "cls" else hidden[-1]
    np.testing.assert_allclose(vectors[1], (expected / expected.norm()).numpy(), atol=1e-5)


def test_queries_use_the_query_prefix(tiny_model_dir: Path, tiny_embedder: TransformersEmbedder) -> None:
    as_query = tiny_embedder.encode_queries(["hello world"])
    as_passage = tiny_embedder.encode(["hello world"])
    assert not np.allclose(as_query, as_passage)
    query_embedder = TransformersEmbedder(tiny_model_dir, prefix="query: ", device="cpu")
    np.testing.assert_allclose(as_query, query_embedder.encode(["hello world"]), atol=1e-6)


def test_unnormalized_output(tiny_model_dir: Path) -> None:
    embedder = TransformersEmbedder(tiny_model_dir, normalize=False, device="cpu")
    norms = np.linalg.norm(embedder.encode(TEXTS[:3]), axis=1)
    assert not np.allclose(norms, 1.0)


def test_forward_hooks_match_encode(tiny_embedder: TransformersEmbedder) -> None:
    batch = tiny_embedder.tokenize_batch(TEXTS[:4])
    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].shape[0] == 4
    pooled = tiny_embedder.forward_batch(batch)
    assert pooled.dtype == torch.float32
    np.testing.assert_allclose(pooled.numpy(), tiny_embedder.encode(TEXTS[:4]), atol=1e-5)


def test_count_tokens_excludes_prefix_and_special_tokens(tiny_embedder: TransformersEmbedder) -> None:
    assert tiny_embedder.count_tokens("hello world") == 2  # ▁hello ▁world
    batch = tiny_embedder.tokenize_batch(["hello world"])
    # <s> ▁passage : ▁hello ▁world </s>
    assert int(batch["attention_mask"].sum()) == 2 + tiny_embedder.num_special_tokens + 2
    assert tiny_embedder.num_special_tokens == 2
    assert tiny_embedder.content_window == 128 - 2 - 2


def test_content_window_fits_and_longer_texts_are_truncated_with_a_warning(
    tiny_embedder: TransformersEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    window = tiny_embedder.content_window
    fits = " ".join(["hello"] * window)
    assert tiny_embedder.count_tokens(fits) == window
    with caplog.at_level(logging.WARNING):
        batch = tiny_embedder.tokenize_batch([fits])
    assert int(batch["attention_mask"].sum()) == tiny_embedder.max_tokens
    assert "truncated" not in caplog.text
    with caplog.at_level(logging.WARNING):
        batch = tiny_embedder.tokenize_batch([fits + " world"])
    assert int(batch["attention_mask"].sum()) == tiny_embedder.max_tokens
    assert "1 of 1 texts" in caplog.text and "truncated" in caplog.text


def test_empty_and_whitespace_texts_are_rejected_by_index(tiny_embedder: TransformersEmbedder) -> None:
    with pytest.raises(ValueError, match="index 2 is empty or whitespace-only"):
        tiny_embedder.encode(["ok", "fine", " \n\t "])
    with pytest.raises(ValueError, match="index 0 is empty"):
        tiny_embedder.encode_queries([""])
    with pytest.raises(TypeError, match="not a single str"):
        tiny_embedder.encode("hello")
    with pytest.raises(TypeError, match="index 1 is int"):
        tiny_embedder.encode(["ok", 3])
    with pytest.raises(ValueError, match="batch_size"):
        tiny_embedder.encode(["ok"], batch_size=0)
    assert tiny_embedder.encode([]).shape == (0, 32)


def _check_split(embedder: TransformersEmbedder, text: str, max_tokens: int) -> list[str]:
    pieces = embedder.split(text, max_tokens)
    assert pieces, "a text with content gives at least one piece"
    for piece in pieces:
        assert piece.strip()
        assert embedder.count_tokens(piece) <= max_tokens, (piece, max_tokens)
    # Consecutive slices: joined they give the text back, except whitespace-only pieces.
    joined = "".join(pieces)
    assert re.sub(r"\s", "", joined) == re.sub(r"\s", "", text)
    position = 0
    for piece in pieces:
        found = text.index(piece, position)
        assert not text[position:found].strip()
        position = found + len(piece)
    assert not text[position:].strip()
    return pieces


def test_split_long_english_text(tiny_embedder: TransformersEmbedder) -> None:
    text = "The long document is embedded with the vector of each passage. " * 60
    pieces = _check_split(tiny_embedder, text, 50)
    assert len(pieces) > 5
    assert "".join(pieces) == text
    counts = [tiny_embedder.count_tokens(piece) for piece in pieces]
    assert min(counts[:-1]) >= 45, "pieces are filled close to the limit"


@pytest.mark.parametrize(
    "text",
    [
        "안녕하세요한국어문장입니다" * 40,
        "日本語のテキストです。東京は日本の首都です。" * 30,
        "你好中文句子北京是中国的首都" * 30,
    ],
)
def test_split_cjk_without_spaces(tiny_embedder: TransformersEmbedder, text: str) -> None:
    # 2 is the least that always works: a piece may start with a character whose only piece
    # lacks the word-start marker, giving ▁ + character.
    for max_tokens in (2, 7, 64):
        pieces = _check_split(tiny_embedder, text, max_tokens)
        assert "".join(pieces) == text


def test_split_handles_growth_when_cutting_inside_words(tiny_embedder: TransformersEmbedder) -> None:
    # "helloing" is ▁hello + ing; cut before "ing" the piece re-tokenises to ▁i n g (3 tokens).
    text = "helloing " * 80
    for max_tokens in (2, 3, 5, 11):
        _check_split(tiny_embedder, text, max_tokens)
    with pytest.raises(ValueError, match="'ing'"):
        tiny_embedder.split(text, 1)  # "ing" alone is ▁ + ing: no 1-token piece can start there


def test_split_random_texts_keep_all_guarantees(tiny_embedder: TransformersEmbedder) -> None:
    rng = random.Random(11)
    alphabet = list("abcdefghij  \n\t.,") + list(SAMPLE_CHARACTERS) + ["the ", "hello ", "ing", "½", "🦜"]
    for _ in range(60):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 400)))
        if not text.strip():
            continue
        max_tokens = rng.choice([3, 4, 9, 30, 200])
        _check_split(tiny_embedder, text, max_tokens)


def test_split_edge_cases(tiny_embedder: TransformersEmbedder) -> None:
    assert tiny_embedder.split("  hello world  ", 10) == ["  hello world  "]
    assert tiny_embedder.split(" \n\t", 10) == []
    assert tiny_embedder.split("", 10) == []
    with pytest.raises(ValueError, match="too small"):
        tiny_embedder.split("\u00bd\u00bd\u00bd", 2)  # ½ normalises to 1⁄2: three tokens per character
    with pytest.raises(ValueError, match="positive"):
        tiny_embedder.split("hello", 0)
    with pytest.raises(TypeError):
        tiny_embedder.split(b"hello", 5)


def test_fingerprint_is_stable_and_content_based(tiny_model_dir: Path, tmp_path: Path) -> None:
    first = TransformersEmbedder(tiny_model_dir, device="cpu")
    twin_dir = save_tiny_model(tmp_path / "twin")
    twin = TransformersEmbedder(twin_dir, device="cpu")
    assert first.fingerprint == twin.fingerprint
    assert len(first.fingerprint) == 16 and int(first.fingerprint, 16) >= 0


@pytest.mark.slow
def test_fingerprint_is_the_same_in_another_process(tiny_model_dir: Path) -> None:
    expected = TransformersEmbedder(tiny_model_dir, device="cpu").fingerprint
    code = (
        "from vbert.embedders.transformers_embedder import compute_fingerprint;"
        f"print(compute_fingerprint({str(tiny_model_dir)!r}, prefix='passage: ', pooling='mean',"
        " max_tokens=128, normalize=True))"
    )
    other_process = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert other_process.stdout.strip() == expected


def test_fingerprint_changes_with_what_changes_the_vectors(tiny_model_dir: Path, tmp_path: Path) -> None:
    base = TransformersEmbedder(tiny_model_dir, device="cpu").fingerprint
    variants = [
        TransformersEmbedder(tiny_model_dir, prefix="query: ", device="cpu"),
        TransformersEmbedder(tiny_model_dir, pooling="cls", device="cpu"),
        TransformersEmbedder(tiny_model_dir, max_tokens=64, device="cpu"),
        TransformersEmbedder(save_tiny_model(tmp_path / "seed1", seed=1), device="cpu"),
    ]
    fingerprints = [variant.fingerprint for variant in variants]
    assert base not in fingerprints
    assert len(set(fingerprints)) == len(fingerprints)
    # The query prefix is not part of the document vectors' identity.
    assert TransformersEmbedder(tiny_model_dir, query_prefix="q: ", device="cpu").fingerprint == base


def test_fingerprint_follows_the_tokenizer_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    before = compute_fingerprint(copy, prefix="", pooling="mean", max_tokens=128, normalize=True)
    tokenizer_json = copy / "tokenizer.json"
    tokenizer_json.write_text(tokenizer_json.read_text().replace("\u2581hello", "\u2581hallo"))
    after = compute_fingerprint(copy, prefix="", pooling="mean", max_tokens=128, normalize=True)
    assert before != after


def test_fingerprint_uses_given_file_hashes(tiny_model_dir: Path) -> None:
    computed = compute_fingerprint(tiny_model_dir, prefix="", pooling="mean", max_tokens=128, normalize=True)
    given = compute_fingerprint(
        tiny_model_dir,
        prefix="",
        pooling="mean",
        max_tokens=128,
        normalize=True,
        file_hashes={"model.safetensors": "0" * 64},
    )
    assert given != computed


def test_invalid_settings(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="pooling"):
        TransformersEmbedder(tiny_model_dir, pooling="max", device="cpu")
    with pytest.raises(ValueError, match="exceeds the model's 128 positions"):
        TransformersEmbedder(tiny_model_dir, max_tokens=129, device="cpu")
    with pytest.raises(ValueError, match="no room for content"):
        TransformersEmbedder(tiny_model_dir, max_tokens=4, device="cpu")


def test_reduced_precision_weights_still_give_float32(tiny_model_dir: Path, tiny_embedder) -> None:
    assert resolve_dtype("fp16") is torch.float16
    assert resolve_dtype(torch.bfloat16) is torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        resolve_dtype("int3")
    embedder = TransformersEmbedder(tiny_model_dir, dtype="bfloat16", device="cpu")
    assert next(embedder.model.parameters()).dtype is torch.bfloat16
    vectors = embedder.encode(TEXTS[:3])
    assert vectors.dtype == np.float32
    cosine = (vectors * tiny_embedder.encode(TEXTS[:3])).sum(axis=1)
    assert cosine.min() > 0.98


def test_model_without_pooling_layer_argument(tmp_path: Path, tiny_model_dir: Path) -> None:
    from transformers import DistilBertConfig, DistilBertModel

    folder = tmp_path / "distil"
    config = DistilBertConfig(
        vocab_size=len(tiny_vocab()), dim=32, n_layers=1, n_heads=2, hidden_dim=64, max_position_embeddings=64
    )
    torch.manual_seed(0)
    DistilBertModel(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, folder / name)
    embedder = TransformersEmbedder(folder, device="cpu")
    assert embedder.dim == 32 and embedder.max_tokens == 64
    np.testing.assert_allclose(np.linalg.norm(embedder.encode(["hello world"]), axis=1), 1.0, atol=1e-6)
