"""Any Hugging Face encoder (hub id or local folder) as a vbert :class:`~vbert.embedders.base.Embedder`."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from vbert.embedders.splitting import split_on_tokens
from vbert.errors import ConfigError, DataError
from vbert.files import sha256_file

logger = logging.getLogger(__name__)

Pooling = Literal["mean", "cls", "last"]
POOLING_MODES: tuple[str, ...] = ("mean", "cls", "last")
FINGERPRINT_LENGTH = 16
# Files whose bytes decide what the model computes; globbed in the model folder.
WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
TOKENIZER_FILES = ("tokenizer.json",)
# Used only when a folder has no tokenizer.json (slow-tokenizer vocabularies).
FALLBACK_TOKENIZER_FILES = (
    "sentencepiece.bpe.model",
    "spiece.model",
    "tokenizer.model",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)
# Model types whose position ids start after the padding index (fairseq/RoBERTa convention).
_OFFSET_POSITION_MODELS = {"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "xmod"}
# Texts probed to measure how many tokens a prefix adds in front of real content.
_PREFIX_PROBES = ("a", "A", "1", ".", "中", "한", "あ", "é", " a", "\u0627")


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``"float16"``/``"fp16"``/``torch.float16`` etc. → a torch dtype (``None`` stays ``None``)."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    aliases = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "float16": torch.float16,
        "fp16": torch.float16,
        "half": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
    }
    try:
        return aliases[str(dtype).lower()]
    except KeyError:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of {sorted(aliases)}") from None


def model_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The weight, config and tokenizer files that define a model folder's outputs."""
    root = Path(folder)
    weights = sorted({p for pattern in WEIGHT_PATTERNS for p in root.glob(pattern) if p.is_file()})
    if not weights:
        raise ConfigError(f"no weight files ({', '.join(WEIGHT_PATTERNS)}) in {root}")
    tokenizer = [root / name for name in TOKENIZER_FILES if (root / name).is_file()]
    if not tokenizer:
        tokenizer = [root / name for name in FALLBACK_TOKENIZER_FILES if (root / name).is_file()]
    config = [root / "config.json"] if (root / "config.json").is_file() else []
    return weights + config + tokenizer


def compute_fingerprint(
    folder: str | os.PathLike[str],
    *,
    prefix: str,
    pooling: str,
    max_tokens: int,
    normalize: bool,
    file_hashes: Mapping[str, str] | None = None,
) -> str:
    """Short sha256 over the model's files and the settings that change its vectors.

    The same files and settings give the same id in any process and on any machine.
    ``file_hashes`` (file name → sha256, e.g. from a verified manifest) skips re-reading files.
    """
    root = Path(folder)
    known = dict(file_hashes or {})
    files = {
        path.relative_to(root).as_posix(): known.get(path.relative_to(root).as_posix()) or sha256_file(path)
        for path in model_files(root)
    }
    payload = {
        "files": dict(sorted(files.items())),
        "prefix": prefix,
        "pooling": pooling,
        "max_tokens": max_tokens,
        "normalize": normalize,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    return digest.hexdigest()[:FINGERPRINT_LENGTH]


def _local_folder(name_or_path: str) -> Path:
    """The folder holding a model's files: the path itself, or its Hugging Face cache snapshot."""
    if Path(name_or_path).is_dir():
        return Path(name_or_path)
    from transformers.utils import cached_file

    config_path = cached_file(name_or_path, "config.json", local_files_only=True)
    if config_path is None:
        raise ConfigError(f"{name_or_path} is not in the local Hugging Face cache")
    return Path(config_path).parent


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("encode() takes a list of texts, not a single str; wrap it: encode([text])")
    checked = list(texts)
    for index, text in enumerate(checked):
        if not isinstance(text, str):
            raise TypeError(f"text at index {index} is {type(text).__name__}, not str")
        if not text.strip():
            raise DataError(
                f"text at index {index} is empty or whitespace-only; there is nothing to embed. "
                "Drop it (or replace it with real content) before calling encode()."
            )
    return checked


class TransformersEmbedder:
    """Embed texts with a Hugging Face encoder: tokenise, run, pool, L2-normalise.

    Args:
        name_or_path: local model folder or Hugging Face hub id (the hub is only contacted when
            the files are not cached locally).
        pooling: ``"mean"`` (attention-mask weighted), ``"cls"`` (first token) or ``"last"``
            (last real token).
        prefix: text put in front of every document (E5 models use ``"passage: "``).
        query_prefix: text put in front of queries by :meth:`encode_queries` (E5: ``"query: "``).
        device: torch device; default CUDA when available, else CPU.
        dtype: weights dtype (``"float16"``, ``torch.bfloat16``...); default: as stored.
            Pooling always runs in float32 and outputs are float32.
        max_tokens: window in tokens, special tokens and prefix included; default the smaller
            of the tokenizer's ``model_max_length`` and the model's position table.
        normalize: L2-normalise outputs (the Embedder protocol expects unit vectors).
        name: display name (default: the folder name or hub id).
        trust_remote_code: allow models that ship their own code; off unless you trust the source.
        file_hashes: precomputed sha256 of files in the model folder (name → hex), e.g. from a
            verified manifest, so the fingerprint does not re-read them.

    Texts are sorted by token length before batching (and results put back in input order), so
    a batch holds texts of similar length and little compute goes to padding. Texts longer than
    the window are truncated with a warning; split them first with :meth:`split`.
    Instances serialise their tokenizer use with a lock and can be shared between threads.
    """

    def __init__(
        self,
        name_or_path: str | os.PathLike[str],
        pooling: Pooling = "mean",
        prefix: str = "passage: ",
        query_prefix: str = "query: ",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        max_tokens: int | None = None,
        normalize: bool = True,
        *,
        name: str | None = None,
        trust_remote_code: bool = False,
        file_hashes: Mapping[str, str] | None = None,
    ) -> None:
        from transformers import AutoConfig, AutoTokenizer

        if pooling not in POOLING_MODES:
            raise ConfigError(f"pooling={pooling!r} is not one of {POOLING_MODES}")
        source = os.fspath(name_or_path)
        self.name_or_path = source
        self.name = name or (Path(source).name if Path(source).is_dir() else source)
        self.pooling = pooling
        self.prefix = prefix
        self.query_prefix = query_prefix
        self.normalize = normalize
        self.device = torch.device(device) if device is not None else self._default_device()
        self._file_hashes = dict(file_hashes or {})
        self._fingerprint: str | None = None
        self._lock = threading.RLock()

        self.tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        if not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError(
                f"{source} has no fast tokenizer (tokenizer.json); TransformersEmbedder needs token offsets "
                "to split texts. Convert the tokenizer with transformers and save it with save_pretrained."
            )
        self._backend = self.tokenizer.backend_tokenizer
        self._backend.no_padding()
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
        self.model = self._load_model(source, resolve_dtype(dtype), trust_remote_code).to(self.device).eval()
        self.dim = self._hidden_size(config)
        self.max_tokens = self._window(config, max_tokens)
        self.num_special_tokens = self._special_token_count()
        self._prefix_tokens = self._prefix_cost(prefix)
        self._query_prefix_tokens = self._prefix_cost(query_prefix)
        self.content_window = self.max_tokens - self.num_special_tokens - self._prefix_tokens
        if self.content_window < 1:
            raise ConfigError(
                f"max_tokens={self.max_tokens} leaves no room for content after {self.num_special_tokens} "
                f"special tokens and the {self._prefix_tokens}-token prefix {prefix!r}"
            )
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._input_names = set(self.tokenizer.model_input_names)

    # -- construction helpers ----------------------------------------------------------------
    @staticmethod
    def _default_device() -> torch.device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    @staticmethod
    def _load_model(source: str, dtype: torch.dtype | None, trust_remote_code: bool) -> torch.nn.Module:
        from transformers import AutoModel

        kwargs: dict = {"trust_remote_code": trust_remote_code}
        if dtype is not None:
            kwargs["dtype"] = dtype
        try:
            # BERT-like models carry a pooler head that mean/cls pooling never uses.
            model = AutoModel.from_pretrained(source, add_pooling_layer=False, **kwargs)
        except TypeError as err:
            if "add_pooling_layer" not in str(err):
                raise
            model = AutoModel.from_pretrained(source, **kwargs)
        if getattr(model.config, "is_encoder_decoder", False):
            model = model.get_encoder()
        return model

    @staticmethod
    def _hidden_size(config) -> int:
        for attribute in ("hidden_size", "d_model", "dim", "n_embd"):
            value = getattr(config, attribute, None)
            if isinstance(value, int) and value > 0:
                return value
        raise ConfigError(f"cannot tell the hidden size of {type(config).__name__}; it has no hidden_size")

    def _window(self, config, requested: int | None) -> int:
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            if getattr(config, "model_type", None) in _OFFSET_POSITION_MODELS:
                positions -= (getattr(config, "pad_token_id", None) or 0) + 1
        else:
            positions = None
        tokenizer_limit = self.tokenizer.model_max_length
        tokenizer_limit = (
            tokenizer_limit if isinstance(tokenizer_limit, int) and tokenizer_limit < 10**6 else None
        )
        if requested is None:
            limits = [limit for limit in (positions, tokenizer_limit) if limit]
            if not limits:
                raise ConfigError(f"{self.name_or_path} declares no maximum length; pass max_tokens=")
            return min(limits)
        if requested < 1:
            raise ConfigError(f"max_tokens must be positive, got {requested}")
        if positions is not None and requested > positions:
            raise ConfigError(f"max_tokens={requested} exceeds the model's {positions} positions")
        return requested

    def _special_token_count(self) -> int:
        with_special = self._encode_one("a", add_special_tokens=True)
        return len(with_special.ids) - len(self._encode_one("a", add_special_tokens=False).ids)

    def _prefix_cost(self, prefix: str) -> int:
        if not prefix:
            return 0
        return max(self.count_tokens(prefix + probe) - self.count_tokens(probe) for probe in _PREFIX_PROBES)

    # -- tokenisation ------------------------------------------------------------------------
    def _encode_one(self, text: str, *, add_special_tokens: bool):
        with self._lock:
            self._backend.no_truncation()
            return self._backend.encode(text, add_special_tokens=add_special_tokens)

    def count_tokens(self, text: str) -> int:
        """Content tokens of ``text``: no special tokens, no prefix."""
        if not isinstance(text, str):
            raise TypeError(f"count_tokens() takes a str, got {type(text).__name__}")
        return len(self._encode_one(text, add_special_tokens=False).ids)

    def split(self, text: str, max_tokens: int) -> list[str]:
        """Cut ``text`` at token boundaries into pieces of at most ``max_tokens`` content tokens.

        See :func:`vbert.embedders.splitting.split_on_tokens` for the guarantees.
        """
        return split_on_tokens(text, max_tokens, self._token_offsets)

    def _token_offsets(self, text: str) -> list[tuple[int, int]]:
        return self._encode_one(text, add_special_tokens=False).offsets

    def tokenize_batch(self, texts: Sequence[str], *, query: bool = False) -> dict[str, torch.Tensor]:
        """Model inputs for ``texts`` (prefix added, truncated to ``max_tokens``, right-padded).

        With :meth:`forward_batch` this lets a benchmark time the bare forward pass.
        """
        checked = _check_texts(texts)
        return self._collate(self._encode_for_model(checked, self.query_prefix if query else self.prefix))

    def _encode_for_model(self, texts: list[str], prefix: str) -> list:
        with self._lock:
            self._backend.enable_truncation(max_length=self.max_tokens)
            try:
                encodings = self._backend.encode_batch([prefix + text for text in texts])
            finally:
                self._backend.no_truncation()
        truncated = sum(1 for encoding in encodings if encoding.overflowing)
        if truncated:
            logger.warning(
                "%d of %d texts are longer than %s's %d-token window and were truncated; split long "
                "texts first with embedder.split(text, embedder.content_window)",
                truncated,
                len(texts),
                self.name,
                self.max_tokens,
            )
        return encodings

    def _collate(self, encodings: Sequence) -> dict[str, torch.Tensor]:
        length = max(len(encoding.ids) for encoding in encodings)
        input_ids = np.full((len(encodings), length), self._pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(encodings), length), dtype=np.int64)
        token_type_ids = np.zeros((len(encodings), length), dtype=np.int64)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            input_ids[row, :n] = encoding.ids
            attention_mask[row, :n] = 1
            token_type_ids[row, :n] = encoding.type_ids
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self._input_names:
            batch["token_type_ids"] = token_type_ids
        return {key: torch.from_numpy(value).to(self.device) for key, value in batch.items()}

    # -- model -------------------------------------------------------------------------------
    def forward_batch(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Pooled (and, with ``normalize``, unit-norm) float32 vectors (b, dim) for one batch."""
        with torch.inference_mode():
            output = self.model(**batch)
            hidden = output[0] if isinstance(output, tuple) else output.last_hidden_state
            hidden = hidden.float()
            mask = batch["attention_mask"]
            if self.pooling == "mean":
                weights = mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-9)
            elif self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                last = mask.sum(dim=1) - 1
                pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
        return pooled

    def _embed(self, texts: Sequence[str], prefix: str, batch_size: int) -> np.ndarray:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive int, got {batch_size!r}")
        checked = _check_texts(texts)
        out = np.empty((len(checked), self.dim), dtype=np.float32)
        if not checked:
            return out
        encodings = self._encode_for_model(checked, prefix)
        # Longest first: batches hold similar lengths, and an out-of-memory error shows up at once.
        order = sorted(range(len(encodings)), key=lambda i: (-len(encodings[i].ids), i))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            vectors = self.forward_batch(self._collate([encodings[i] for i in rows]))
            out[rows] = vectors.cpu().numpy()
        return out

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed documents (with ``prefix``): float32 array (n, dim), unit rows, input order."""
        return self._embed(texts, self.prefix, batch_size)

    def encode_queries(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed search queries (with ``query_prefix``): float32 array (n, dim)."""
        return self._embed(texts, self.query_prefix, batch_size)

    # -- identity ----------------------------------------------------------------------------
    @property
    def model_dir(self) -> Path:
        """Local folder with the model's files (for hub ids: the Hugging Face cache snapshot)."""
        return _local_folder(self.name_or_path)

    @property
    def fingerprint(self) -> str:
        """Stable id of weights + config + tokenizer + prefix + pooling + window (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = compute_fingerprint(
                self.model_dir,
                prefix=self.prefix,
                pooling=self.pooling,
                max_tokens=self.max_tokens,
                normalize=self.normalize,
                file_hashes=self._file_hashes,
            )
        return self._fingerprint

    def __repr__(self) -> str:
        return (
            f"TransformersEmbedder(name={self.name!r}, dim={self.dim}, max_tokens={self.max_tokens}, "
            f"pooling={self.pooling!r}, prefix={self.prefix!r}, device={str(self.device)!r})"
        )
