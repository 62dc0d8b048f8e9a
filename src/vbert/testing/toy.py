"""Tiny stand-ins for dry runs, tests and benchmarks of the dataset builders (imports torch).

:class:`ToyEmbedder` is a random-weight embedder that follows the Embedder protocol to the
letter, so the builders run anywhere without model weights (``vbert data articles --embedder
toy`` is a dry run of a build); its vectors mean nothing, its tokenizer, prefix, window and
batching behave like a real one. :func:`toy_articles` makes a deterministic multilingual corpus.
"""

from __future__ import annotations

import hashlib
import re
import time
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from vbert.data.article import Article

# A token: up to 4 word characters or one other visible character, with the whitespace before it.
_TOKEN = re.compile(r"\s*(?:\w{1,4}|[^\w\s])")
_SPECIAL_IDS = 2  # 0 = padding, 1 = begin/end of text


class ToyEmbedder:
    """Deterministic tiny Transformer embedder (mean pooling, unit vectors), for tests and dry runs.

    Args:
        dim: output dimension.
        max_tokens: window including the two special tokens and the prefix.
        prefix: document prefix added before every text (like e5's ``"passage: "``).
        vocab_size: hashed token ids are taken modulo this.
        layers: Transformer layers.
        seed: seed of the random weights.
        seconds_per_batch: extra sleep per batch, to stand in for a slower model.
    """

    def __init__(
        self,
        dim: int = 32,
        max_tokens: int = 128,
        prefix: str = "passage: ",
        vocab_size: int = 4096,
        layers: int = 1,
        seed: int = 0,
        seconds_per_batch: float = 0.0,
    ) -> None:
        self.name = "toy-embedder"
        self.dim = dim
        self.max_tokens = max_tokens
        self.prefix = prefix
        self.vocab_size = vocab_size
        self.seconds_per_batch = seconds_per_batch
        self._prefix_ids = self._ids(prefix)
        self.content_window = max_tokens - 2 - len(self._prefix_ids)
        if self.content_window < 1:
            raise ValueError(
                f"max_tokens={max_tokens} leaves no room for content after the prefix {prefix!r}"
            )
        config = f"{self.name}|{dim}|{max_tokens}|{prefix}|{vocab_size}|{layers}|{seed}"
        self.fingerprint = hashlib.sha256(config.encode("utf-8")).hexdigest()[:16]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self._tokens = nn.Embedding(vocab_size + _SPECIAL_IDS, dim)
            self._positions = nn.Embedding(max_tokens, dim)
            layer = nn.TransformerEncoderLayer(
                dim, nhead=4, dim_feedforward=2 * dim, dropout=0.0, batch_first=True
            )
            self._encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self._encoder.eval()

    def _token_spans(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _TOKEN.finditer(text)]

    def _ids(self, text: str) -> list[int]:
        return [
            _SPECIAL_IDS + zlib.crc32(text[a:b].strip().encode("utf-8")) % self.vocab_size
            for a, b in self._token_spans(text)
        ]

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Queries are embedded like documents (the toy model has no query prefix)."""
        return self.encode(texts, batch_size)

    def count_tokens(self, text: str) -> int:
        """Content tokens of ``text`` (no prefix, no special tokens)."""
        return len(self._token_spans(text))

    def split(self, text: str, max_tokens: int) -> list[str]:
        """Consecutive pieces of at most ``max_tokens`` tokens that, joined, are exactly ``text``."""
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
        spans = self._token_spans(text)
        if not spans:
            return [text] if text else []
        cuts = [spans[i][0] for i in range(max_tokens, len(spans), max_tokens)]
        bounds = [0, *cuts, len(text)]
        return [text[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit vectors (len(texts), dim), float32; texts longer than the window are truncated."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            ids = [[1, *self._prefix_ids, *self._ids(t)[: self.content_window], 1] for t in batch]
            width = max(len(x) for x in ids)
            tokens = torch.zeros((len(ids), width), dtype=torch.long)
            for row, x in enumerate(ids):
                tokens[row, : len(x)] = torch.tensor(x)
            padding = tokens == 0
            with torch.inference_mode():
                hidden = self._tokens(tokens) + self._positions(torch.arange(width))[None]
                hidden = self._encoder(hidden, src_key_padding_mask=padding)
                keep = (~padding).unsqueeze(-1).float()
                pooled = (hidden * keep).sum(1) / keep.sum(1)
                pooled = pooled / pooled.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            out[start : start + len(batch)] = pooled.numpy()
            if self.seconds_per_batch:
                time.sleep(self.seconds_per_batch)
        return out


_WORDS = {
    "en": [
        "the",
        "system",
        "package",
        "file",
        "user",
        "network",
        "server",
        "option",
        "command",
        "config",
        "install",
        "update",
        "boot",
    ],
    "de": [
        "das",
        "System",
        "Paket",
        "Datei",
        "Benutzer",
        "Netzwerk",
        "Server",
        "Option",
        "Befehl",
        "Einstellung",
        "Installation",
    ],
    "ko": [
        "시스템",
        "패키지",
        "파일",
        "사용자",
        "네트워크",
        "서버",
        "옵션",
        "명령",
        "설정",
        "설치",
        "업데이트",
        "부팅",
    ],
    "ja": [
        "システム",
        "パッケージ",
        "ファイル",
        "ユーザー",
        "ネットワーク",
        "サーバー",
        "オプション",
        "コマンド",
        "設定",
    ],
}


def toy_articles(n: int, seed: int = 0, min_words: int = 20, max_words: int = 400) -> list[Article]:
    """``n`` deterministic articles in en/de/ko/ja of ``min_words``..``max_words`` words, in paragraphs."""
    rng = np.random.default_rng(seed)
    langs = sorted(_WORDS)
    articles = []
    for i in range(n):
        lang = langs[i % len(langs)]
        words = _WORDS[lang]
        n_words = int(rng.integers(min_words, max_words + 1))
        picked = [words[j] for j in rng.integers(0, len(words), size=n_words)]
        paragraphs = [" ".join(picked[k : k + 40]) + "." for k in range(0, n_words, 40)]
        articles.append(
            Article(
                id=f"toy:{seed}:{i:05d}",
                lang=lang,
                title=f"toy article {i}",
                text="\n\n".join(paragraphs),
                source="toy",
                license="CC0-1.0",
                group=f"toy-group-{i // len(langs)}",
            )
        )
    return articles
