"""A sentence-transformers model folder that embeds documents of any length with vbert.

``export_sentence_transformers(merger, destination)`` (CLI: ``vbert export-st``) writes::

    DST/modules.json                      0: ChunkEmbedder, 1: ChunkMerger
    DST/config_sentence_transformers.json prompts {"query", "document"}, default "document", cosine
    DST/0_ChunkEmbedder/                  the base embedder (transformers weights + tokenizer)
    DST/1_ChunkMerger/                    the merger (save_pretrained folder, or a baseline's name)

``SentenceTransformer(DST, trust_remote_code=True)`` then loads offline (sentence-transformers 6
refuses any module class outside its own package without ``trust_remote_code``; the code run is
this installed module, nothing is read from the folder but weights and JSON).

* ``encode`` / ``encode_document``: each text is cut at the embedder's window (what is left after
  the prompt and the special tokens), the prompt is put in front of every chunk, the chunks are
  embedded and the merger turns each document's chunk sequence into one unit vector: the vectors
  of :meth:`vbert.LongDocumentEncoder.encode`.
* ``encode_query``: a query that fits the window is embedded as the embedder embeds queries (e5:
  ``"query: "``), never merged; a longer one is chunked with the query prompt and merged.
* ``start_multi_process_pool`` works: a worker rebuilds the embedder from the folder.

Inference only: there are no gradients through the chunking, so ``fit`` is not supported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vbert.errors import ConfigError, DataError
from vbert.integrations._shared import require

require("sentence_transformers", "st")

from sentence_transformers import SentenceTransformer  # noqa: E402
from sentence_transformers.base.modules import InputModule, Module  # noqa: E402

#: Texts probed to measure how many tokens a prompt adds in front of real content.
_PROMPT_PROBES = ("a", "A", "1", ".", "中", "한", "あ", "é", " a", "\u0627")
DOCUMENT_PROMPT = "document"
QUERY_PROMPT = "query"


def _hub_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The hub download options sentence-transformers passes to a module's ``load``."""
    return {
        key: kwargs[key] for key in ("token", "cache_folder", "revision", "local_files_only") if key in kwargs
    }


class ChunkEmbedder(InputModule):
    """Input module: texts → prompted chunks → unit chunk vectors (with per-text chunk counts).

    Args:
        model_path: folder of a transformers encoder with a fast tokenizer.
        pooling: ``"mean"``, ``"cls"`` or ``"last"``, as the vbert embedder pooled.
        max_tokens: the window in tokens, prompt and special tokens included.
        document_prompt: the prompt the exported embedder put in front of documents.
        document_chunk_tokens: content tokens per chunk with that prompt (the embedder's
            ``content_window``); other prompts get the window minus their own token cost.
        name: display name of the embedder.
        normalize: L2-normalise chunk vectors (vbert's embedders always do).
        chunk_batch_size: chunks per forward pass; a batch of long documents is many chunks.
    """

    config_file_name = "vbert_chunk_embedder.json"
    config_keys = [
        "pooling",
        "max_tokens",
        "document_prompt",
        "document_chunk_tokens",
        "name",
        "normalize",
        "chunk_batch_size",
    ]
    save_in_root = False
    forward_kwargs = {"task"}

    def __init__(
        self,
        model_path: str | Path,
        pooling: str = "mean",
        max_tokens: int = 512,
        document_prompt: str = "",
        document_chunk_tokens: int | None = None,
        name: str = "embedder",
        normalize: bool = True,
        chunk_batch_size: int = 32,
    ) -> None:
        super().__init__()
        from vbert import load_embedder

        self.model_path = str(model_path)
        self.pooling = pooling
        self.max_tokens = max_tokens
        self.document_prompt = document_prompt
        self.name = name
        self.normalize = normalize
        self.chunk_batch_size = chunk_batch_size
        # No prefix of its own: the sentence-transformers prompt is the prefix, put on each chunk.
        self.embedder = load_embedder(
            self.model_path,
            prefix="",
            query_prefix="",
            pooling=pooling,
            max_tokens=max_tokens,
            normalize=normalize,
            name=name,
            device="cpu",
        )
        self.document_chunk_tokens = document_chunk_tokens or self.chunk_tokens(document_prompt)
        # Registered so that sentence-transformers' .to(device), .half() and share_memory() reach it.
        self.auto_model = self.embedder.model
        self.tokenizer = self.embedder.tokenizer
        self.max_seq_length = max_tokens
        self.count_chunk_tokens = False

    # -- chunking ------------------------------------------------------------------------------
    def prompt_tokens(self, prompt: str) -> int:
        """How many tokens ``prompt`` adds in front of any text (the most over a few probes)."""
        if not prompt:
            return 0
        count = self.embedder.count_tokens
        return max(count(prompt + probe) - count(probe) for probe in _PROMPT_PROBES)

    def chunk_tokens(self, prompt: str) -> int:
        """Content tokens per chunk when ``prompt`` goes in front of every chunk."""
        if prompt == self.document_prompt and getattr(self, "document_chunk_tokens", None):
            return self.document_chunk_tokens
        window = self.embedder.content_window - self.prompt_tokens(prompt)
        if window < 1:
            raise ConfigError(
                f"the prompt {prompt!r} leaves no room for text in the {self.max_tokens}-token window"
            )
        return window

    def on_model_ready(self, model) -> None:
        # The token-weighted mean needs each chunk's token count; other mergers do not.
        self.count_chunk_tokens = any(getattr(module, "needs_token_counts", False) for module in model)

    def preprocess(self, inputs, prompt: str | None = None, task: str | None = None, **kwargs) -> dict:
        prompt = prompt or ""
        window = self.chunk_tokens(prompt)
        chunked: list[list[str]] = []
        for index, text in enumerate(inputs):
            if not isinstance(text, str):
                raise DataError(f"input {index} is {type(text).__name__}: this model embeds text only")
            if not text.strip():
                raise DataError(f"input {index} is empty or whitespace-only: there is nothing to embed")
            chunked.append(self.embedder.split(text, window))
        chunks = [chunk for pieces in chunked for chunk in pieces]
        features = dict(self.embedder.tokenize_batch([prompt + chunk for chunk in chunks]))
        features["chunk_counts"] = torch.tensor([len(pieces) for pieces in chunked])
        # A query that fits the window is the embedder's query vector; a document is always merged.
        features["merge_single_chunks"] = torch.tensor(task != QUERY_PROMPT)
        if self.count_chunk_tokens:
            counts = [max(self.embedder.count_tokens(chunk), 1) for chunk in chunks]
            features["chunk_token_counts"] = torch.tensor(counts, dtype=torch.float32)
        return features

    # -- model ---------------------------------------------------------------------------------
    def forward(self, features: dict[str, Any], task: str | None = None, **kwargs) -> dict[str, Any]:
        inputs = {key: value for key, value in features.items() if key in self.embedder_inputs}
        n_chunks = inputs["input_ids"].shape[0]
        vectors = []
        for start in range(0, n_chunks, self.chunk_batch_size):
            batch = {key: value[start : start + self.chunk_batch_size] for key, value in inputs.items()}
            length = int(batch["attention_mask"].sum(dim=1).max())
            batch = {key: value[:, :length] for key, value in batch.items()}
            vectors.append(self.embedder.forward_batch(batch))  # (b, dim) unit rows
        features["sentence_embedding"] = torch.cat(vectors)  # (n_chunks, dim)
        return features

    embedder_inputs = ("input_ids", "attention_mask", "token_type_ids")

    def get_embedding_dimension(self) -> int:
        return self.embedder.dim

    # -- saving and loading --------------------------------------------------------------------
    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.embedder.model.save_pretrained(output_path, safe_serialization=safe_serialization)
        self.embedder.tokenizer.save_pretrained(output_path)
        self.save_config(output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs) -> ChunkEmbedder:
        hub = _hub_options(kwargs)
        config = cls.load_config(model_name_or_path, subfolder=subfolder, **hub)
        folder = cls.load_dir_path(model_name_or_path, subfolder=subfolder, **hub)
        return cls(folder, **config)

    def __getstate__(self) -> dict:
        # Multi-process workers rebuild the embedder from its folder (tokenizers hold locks).
        return {
            "init": {"model_path": self.model_path, **self.get_config_dict()},
            "count": self.count_chunk_tokens,
        }

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state["init"])
        self.count_chunk_tokens = state["count"]


class ChunkMerger(Module):
    """Module: chunk vectors → one unit vector per text, with a vbert merger.

    ``merger`` is a :class:`vbert.SequenceMergerModel` (saved with ``save_pretrained``) or a
    training-free baseline (saved by its registry name: ``mean``, ``mean-weighted``, ``truncation``).
    """

    config_file_name = "vbert_merger.json"
    config_keys = ["baseline"]

    def __init__(self, merger, baseline: str | None = None) -> None:
        super().__init__()
        self.merger = merger
        self.baseline = baseline

    @property
    def needs_token_counts(self) -> bool:
        return bool(getattr(self.merger, "weighted", False))

    def forward(self, features: dict[str, Any], **kwargs) -> dict[str, Any]:
        from vbert.mergers import merge_sequences

        chunk_vectors = features["sentence_embedding"]  # (n_chunks, dim)
        counts = features["chunk_counts"].tolist()
        vectors = chunk_vectors.detach().float().cpu().numpy()
        weights = features.get("chunk_token_counts")
        weights = None if weights is None else weights.cpu().numpy()
        starts = np.cumsum([0, *counts])
        merge_all = bool(features["merge_single_chunks"])
        rows = [row for row, count in enumerate(counts) if merge_all or count > 1]
        # Texts left unmerged (queries that fit the window) keep their one chunk vector.
        out = chunk_vectors[torch.as_tensor(starts[:-1], device=chunk_vectors.device)].clone()
        if rows:
            sequences = [vectors[starts[row] : starts[row + 1]] for row in rows]
            sequence_weights = None if weights is None else [weights[starts[r] : starts[r + 1]] for r in rows]
            merged = merge_sequences(self.merger, sequences, sequence_weights)  # (len(rows), dim)
            out[rows] = torch.from_numpy(merged).to(out)
        features["sentence_embedding"] = out  # (n_texts, dim)
        return features

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        if self.baseline is None:
            self.merger.save_pretrained(output_path, safe_serialization=safe_serialization)
        self.save_config(output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs) -> ChunkMerger:
        from vbert import load_merger

        hub = _hub_options(kwargs)
        baseline = cls.load_config(model_name_or_path, subfolder=subfolder, **hub).get("baseline")
        if baseline is not None:
            return cls(load_merger(baseline), baseline=baseline)
        return cls(load_merger(cls.load_dir_path(model_name_or_path, subfolder=subfolder, **hub)))


def baseline_name(merger) -> str | None:
    """The registry name of a training-free merger (matched by fingerprint), else None."""
    from vbert.mergers import MERGERS, baseline_names

    for name in baseline_names():
        if MERGERS.get(name).factory().fingerprint == merger.fingerprint:
            return name
    return None


def build_model(embedder, merger, chunk_batch_size: int = 32) -> SentenceTransformer:
    """A :class:`SentenceTransformer` made of a vbert embedder and merger (in memory)."""
    from vbert.long_document import check_compatible

    for attribute in ("model", "tokenizer", "model_dir", "pooling", "prefix", "query_prefix"):
        if not hasattr(embedder, attribute):
            raise ConfigError(
                f"embedder {getattr(embedder, 'name', embedder)!r} has no {attribute!r}: only transformers "
                "embedders (vbert.load_embedder) can be exported to sentence-transformers"
            )
    check_compatible(embedder, merger)
    baseline = baseline_name(merger)
    if baseline is None and not hasattr(merger, "save_pretrained"):
        raise ConfigError(
            f"merger {merger.name!r} is neither a trained merger (save_pretrained) nor a registered baseline"
        )
    chunk_embedder = ChunkEmbedder(
        embedder.model_dir,
        pooling=embedder.pooling,
        max_tokens=embedder.max_tokens,
        document_prompt=embedder.prefix,
        document_chunk_tokens=embedder.content_window,
        name=embedder.name,
        normalize=getattr(embedder, "normalize", True),
        chunk_batch_size=chunk_batch_size,
    )
    return SentenceTransformer(
        modules=[chunk_embedder, ChunkMerger(merger, baseline=baseline)],
        prompts={QUERY_PROMPT: embedder.query_prefix, DOCUMENT_PROMPT: embedder.prefix},
        default_prompt_name=DOCUMENT_PROMPT,
        similarity_fn_name="cosine",
        device="cpu",
    )


def export_sentence_transformers(merger, destination: str | Path, embedder="default") -> Path:
    """Write a sentence-transformers folder for ``embedder`` + ``merger``; returns its path.

    ``merger`` and ``embedder`` are names, folders or loaded objects (as for
    :func:`vbert.load_merger` / :func:`vbert.load_embedder`). The folder is written atomically
    and must not exist yet.
    """
    from vbert import load_embedder, load_merger
    from vbert.files import atomic_folder

    destination = Path(destination)
    if destination.exists():
        raise ConfigError(f"{destination} already exists: choose a new folder for the export")
    if isinstance(embedder, str | Path):
        embedder = load_embedder(embedder)
    if isinstance(merger, str | Path):
        merger = load_merger(merger)
    model = build_model(embedder, merger)
    with atomic_folder(destination) as folder:
        model.save(str(folder), create_model_card=False)
        card = {
            "embedder": {"name": embedder.name, "fingerprint": embedder.fingerprint},
            "merger": {"name": merger.name, "fingerprint": merger.fingerprint},
        }
        (folder / "vbert_export.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return destination
