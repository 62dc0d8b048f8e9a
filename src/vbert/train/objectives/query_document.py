"""``query-document``: a query must retrieve its long document's merged vector (issue 12).

On the rows of :mod:`vbert.data.query_documents` (a document's chunk vectors and the vectors of
its deep paragraphs, embedded with the query prefix), per batch:

* query → document: each query picks its own document's merged vector among the batch's
  documents in its target's language (in-batch InfoNCE, :func:`query_document_loss`) — the
  ranking the deep-paragraph evaluation scores;
* chunk → document (``chunk_weight``): the same with one random chunk of each document as its
  pseudo-query;
* anchor (``anchor_weight``): 1 − cos(merged, mean of the chunks), which keeps merged vectors in
  the embedder's space.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field

from vbert.errors import ConfigError

from ..batches import pad_batch
from ..long_losses import anchor_to_mean
from .base import OBJECTIVES, Objective, ObjectiveOptions, step_generator


def query_document_loss(
    queries: torch.Tensor,
    documents: torch.Tensor,
    targets: torch.Tensor,
    candidates: torch.Tensor,
    temperature: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE of ``queries`` (Q, d) over ``documents`` (B, d), both normalised here: the target of query
    i is document ``targets[i]``; only documents with ``candidates[i]`` (Q, B) bool compete (the target
    must be one). Returns the mean loss and the share of queries whose target ranks first."""
    if temperature <= 0:
        raise ConfigError(f"temperature must be positive, got {temperature}")
    logits = F.normalize(queries.float(), dim=-1) @ F.normalize(documents.float(), dim=-1).T  # (Q, B)
    logits = (logits / temperature).masked_fill(~candidates, float("-inf"))
    accuracy = (logits.argmax(dim=1) == targets).float().mean()
    return F.cross_entropy(logits, targets), accuracy


class QueryDocumentOptions(ObjectiveOptions):
    """Temperature of both contrastive terms, and the weights of the chunk and anchor terms."""

    temperature: float = Field(0.05, gt=0.0)
    chunk_weight: float = Field(1.0, ge=0.0)
    anchor_weight: float = Field(1.0, ge=0.0)


class QueryDocumentDataset(torch.utils.data.Dataset):
    """A file written by :func:`vbert.data.query_documents.write_query_documents`, checksum verified.

    Items: ``inputs`` (n_chunks, d), ``queries`` (n_queries, d) and ``lang``.
    """

    kind = "query-documents"

    def __init__(self, path: str | Path) -> None:
        from vbert.data.query_documents import read_query_documents  # its builder imports the evaluation

        stored = read_query_documents(path)
        self.documents, self.queries, self.langs = stored.documents, stored.queries, stored.langs
        self.lengths = np.array([len(d) for d in self.documents], dtype=np.int64)
        self.dim = int(stored.sidecar["dim"])
        self.fingerprint = str(stored.sidecar["sha256"])[:16]
        self.source = str(path)
        self.metadata = stored.sidecar

    def __len__(self) -> int:
        return len(self.documents)

    def __getitem__(self, index: int) -> dict:
        return {"inputs": self.documents[index], "queries": self.queries[index], "lang": self.langs[index]}


@OBJECTIVES.register("query-document")
class QueryDocumentObjective(Objective):
    """In-batch query→document and chunk→document InfoNCE within a language, plus the anchor."""

    Options = QueryDocumentOptions
    data_kind = "query-documents"

    @classmethod
    def open_data(cls, spec: str, split: str) -> QueryDocumentDataset:
        if split != "train":
            raise ConfigError(
                f"a query-document file has no splits (asked for {split!r}): build one file per split "
                "with `vbert data query-documents --split ...` and point the stage's data at it"
            )
        return QueryDocumentDataset(spec)

    @classmethod
    def collate(cls, items: Sequence[dict], max_length: int | None) -> dict[str, torch.Tensor]:
        """Padded documents, their queries flattened with ``query_document`` (the row each query
        targets) and ``same_language`` (B, B): which rows share a language."""
        batch = pad_batch(items, max_length)
        dim = batch["inputs"].shape[-1]
        queries = [np.asarray(item["queries"], dtype=np.float32).reshape(-1, dim) for item in items]
        langs = np.array([item["lang"] for item in items])
        batch["queries"] = torch.from_numpy(np.concatenate(queries))  # (Q, d)
        batch["query_document"] = torch.from_numpy(
            np.repeat(np.arange(len(items)), [len(q) for q in queries])
        )  # (Q,)
        batch["same_language"] = torch.from_numpy(langs[:, None] == langs[None, :])  # (B, B)
        return batch

    def forward(
        self,
        inputs: torch.Tensor,
        attention_mask: torch.Tensor,
        queries: torch.Tensor,
        query_document: torch.Tensor,
        same_language: torch.Tensor,
        seed: int,
    ) -> dict[str, torch.Tensor]:
        options: QueryDocumentOptions = self.options
        pooled = self.merger(inputs, attention_mask=attention_mask).pooler_output  # (B, d)
        loss = pooled.sum() * 0.0
        metrics: dict[str, torch.Tensor] = {}
        if len(queries):
            query, accuracy = query_document_loss(
                queries, pooled, query_document, same_language[query_document], options.temperature
            )
            loss = loss + query
        else:  # every key on every micro-batch: processes reduce the same metrics
            query = accuracy = loss.detach()
        metrics["query"], metrics["query_acc"] = query.detach(), accuracy
        if options.chunk_weight > 0:
            lengths = attention_mask.sum(dim=1)  # (B,)
            draw = torch.rand(len(lengths), generator=step_generator(seed)).to(inputs.device)
            picked = (draw * lengths).long().clamp(max=lengths - 1)  # (B,) a real chunk of each row
            rows = torch.arange(len(lengths), device=inputs.device)
            chunk, _ = query_document_loss(
                inputs[rows, picked], pooled, rows, same_language, options.temperature
            )
            loss = loss + options.chunk_weight * chunk
            metrics["chunk"] = chunk.detach()
        anchor = anchor_to_mean(pooled, inputs, attention_mask)
        if options.anchor_weight > 0:
            loss = loss + options.anchor_weight * anchor
        metrics["anchor_cos"] = (1.0 - anchor).detach()
        return {"loss": loss, **metrics}
