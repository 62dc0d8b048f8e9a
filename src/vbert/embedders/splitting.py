"""Token-safe splitting: cut a text on token boundaries so that every piece fits a window.

Any embedder with a tokenizer that reports character offsets can use :func:`split_on_tokens`
for its ``split`` method; :func:`tokenizer_offsets` adapts a Hugging Face fast tokenizer or a
``tokenizers.Tokenizer``::

    def split(self, text, max_tokens):
        return split_on_tokens(text, max_tokens, tokenizer_offsets(self.tokenizer))
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence

from vbert.errors import ConfigError

#: ``text -> [(start, end), ...]``: character offsets of the text's content tokens (no special tokens).
TokenOffsets = Callable[[str], Sequence[tuple[int, int]]]


def tokenizer_offsets(tokenizer) -> TokenOffsets:
    """Offsets of content tokens from a Hugging Face fast tokenizer or a ``tokenizers.Tokenizer``."""
    if getattr(tokenizer, "is_fast", False):

        def hf_offsets(text: str) -> list[tuple[int, int]]:
            encoded = tokenizer(
                text, add_special_tokens=False, truncation=False, return_offsets_mapping=True, verbose=False
            )
            return encoded["offset_mapping"]

        return hf_offsets
    if callable(getattr(tokenizer, "encode", None)) and hasattr(tokenizer, "truncation"):
        if tokenizer.truncation is not None:
            raise ConfigError(
                "the tokenizer truncates; call tokenizer.no_truncation() before splitting with it"
            )

        def backend_offsets(text: str) -> list[tuple[int, int]]:
            return tokenizer.encode(text, add_special_tokens=False).offsets

        return backend_offsets
    raise TypeError(
        f"{type(tokenizer).__name__} is not a fast tokenizer: token-safe splitting needs character "
        "offsets (a tokenizers.Tokenizer or a transformers PreTrainedTokenizerFast)"
    )


def split_on_tokens(text: str, max_tokens: int, offsets: TokenOffsets) -> list[str]:
    """Cut ``text`` at token boundaries into pieces of at most ``max_tokens`` content tokens.

    ``offsets`` gives the character offsets of a text's tokens (its length is the token count).

    Guarantees:

    * every returned piece re-tokenises (on its own, without prefix or special tokens) to at
      most ``max_tokens`` tokens; the cut is moved back where re-tokenisation of a piece
      would grow past the limit;
    * the pieces are consecutive slices of ``text``: joined, they give ``text`` back, except
      for pieces made only of whitespace, which are dropped;
    * a text that already fits comes back unchanged as one piece; an empty or
      whitespace-only text gives ``[]``.

    Raises :class:`~vbert.errors.ConfigError` if a single character tokenises to more than ``max_tokens`` tokens.
    """
    if not isinstance(text, str):
        raise TypeError(f"split() takes a str, got {type(text).__name__}")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ConfigError(f"max_tokens must be a positive int, got {max_tokens!r}")
    if not text.strip():
        return []
    token_spans = offsets(text)
    n_tokens = len(token_spans)
    if n_tokens <= max_tokens:
        return [text]
    starts = list(itertools.accumulate((start for start, _ in token_spans), max))

    def boundary(token_index: int) -> int:
        return starts[token_index] if token_index < n_tokens else len(text)

    pieces: list[str] = []
    cut = first = 0
    while cut < len(text):
        # Smallest end that still makes progress: the first token boundary after `cut`.
        min_end = bisect.bisect_right(starts, cut, lo=first)
        end = max(min(first + max_tokens, n_tokens), min_end)
        while True:
            count = len(offsets(text[cut : boundary(end)]))
            if count <= max_tokens:
                break
            if end == min_end:
                raise ConfigError(
                    f"max_tokens={max_tokens} is too small: the text at character {cut} "
                    f"({text[cut : boundary(end)]!r}) alone tokenises to {count} tokens"
                )
            end = max(end - (count - max_tokens), min_end)
        pieces.append(text[cut : boundary(end)])
        cut = boundary(end)
        first = bisect.bisect_left(starts, cut, lo=first)
    return [piece for piece in pieces if piece.strip()]
