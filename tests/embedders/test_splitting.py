"""Token-safe splitting as a function that any embedder with a fast tokenizer can use."""

from __future__ import annotations

import pytest

from vbert.embedders import split_on_tokens, tokenizer_offsets
from vbert.errors import ConfigError

TEXT = "Splitting happens on token boundaries, never inside a word. 한국어 문장도 잘 나뉩니다! " * 12


@pytest.mark.parametrize("limit", [4, 17, 64])
def test_the_function_splits_like_the_embedder(tiny_embedder, limit: int) -> None:
    hf_tokenizer = tiny_embedder.tokenizer
    for tokenizer in (hf_tokenizer, hf_tokenizer.backend_tokenizer):
        pieces = split_on_tokens(TEXT, limit, tokenizer_offsets(tokenizer))
        assert pieces == tiny_embedder.split(TEXT, limit)
        assert all(tiny_embedder.count_tokens(piece) <= limit for piece in pieces)
        assert "".join(pieces) == TEXT


def test_any_offsets_function_works() -> None:
    def words(text: str) -> list[tuple[int, int]]:
        spans, start = [], None
        for i, ch in enumerate(text + " "):
            if ch.isspace() and start is not None:
                spans.append((start, i))
                start = None
            elif not ch.isspace() and start is None:
                start = i
        return spans

    assert split_on_tokens("a b c d e", 2, words) == ["a b ", "c d ", "e"]
    assert split_on_tokens("   ", 2, words) == []
    with pytest.raises(ConfigError, match="positive int"):
        split_on_tokens("a b", 0, words)


def test_a_truncating_or_slow_tokenizer_is_refused(tiny_embedder) -> None:
    from tokenizers import Tokenizer

    backend = Tokenizer.from_str(tiny_embedder.tokenizer.backend_tokenizer.to_str())
    backend.enable_truncation(max_length=4)
    with pytest.raises(ConfigError, match="truncates"):
        tokenizer_offsets(backend)
    with pytest.raises(TypeError, match="not a fast tokenizer"):
        tokenizer_offsets(object())
