"""vbert as an MTEB 2.x encoder, and an in-memory retrieval task built from held-out documents.

    import mteb
    from vbert.integrations.mteb import VbertEncoder
    results = mteb.evaluate(VbertEncoder("default", "default"), mteb.get_tasks(tasks=["LEMBQMSumRetrieval"]))

* Documents (``prompt_type`` document or none) are chunked at the embedder's window, embedded
  with the embedder's document prefix and merged: :meth:`vbert.LongDocumentEncoder.encode`.
* Queries (``prompt_type`` query) that fit the window are embedded as the embedder embeds
  queries (e5: ``"query: "``); a longer query is chunked, each chunk embedded as a query, merged.
* MTEB task prompts and instructions are not used: the embedder's own prefixes decide.
* An empty text gets a zero vector (MTEB corpora contain a few; vbert itself refuses them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vbert.errors import DataError
from vbert.integrations._shared import build_encoder, require

require("mteb", "mteb")

from datasets import Dataset  # noqa: E402
from mteb.abstasks.retrieval import AbsTaskRetrieval  # noqa: E402
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData  # noqa: E402
from mteb.abstasks.task_metadata import TaskMetadata  # noqa: E402
from mteb.models.abs_encoder import AbsEncoder  # noqa: E402
from mteb.models.model_meta import ModelMeta, ScoringFunction  # noqa: E402
from mteb.types import PromptType  # noqa: E402


def _label(value: object) -> str:
    """A path-safe short label for a model name: ``/a/b/default-merger`` → ``default-merger``."""
    text = Path(str(value)).name or str(value)
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-") or "model"


def _parameters(*models: object) -> int | None:
    total = 0
    for model in models:
        module = getattr(model, "model", model)
        if not hasattr(module, "parameters"):
            continue
        total += sum(p.numel() for p in module.parameters())
    return total or None


class VbertEncoder(AbsEncoder):
    """An MTEB encoder (``mteb.EncoderProtocol``) for a vbert embedder + merger.

    Args:
        embedder: a name or folder for :func:`vbert.load_embedder`, or a loaded embedder.
        merger: a name or folder for :func:`vbert.load_merger`, or a loaded merger.
        cache: the chunk cache (as for :class:`vbert.LongDocumentEncoder`); ``False`` disables it.
        chunk_tokens: content tokens per chunk (default: the embedder's window).
        batch_size: chunks per embedder forward pass.
        model_name, revision, device: accepted for mteb's loader protocol; the name and revision
            of :attr:`mteb_model_meta` are derived from the embedder and merger instead.
    """

    def __init__(
        self,
        embedder: object = "default",
        merger: object = "default",
        *,
        cache: object = None,
        chunk_tokens: int | None = None,
        batch_size: int = 32,
        model_name: str | None = None,
        revision: str | None = None,
        device: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.model = build_encoder(
            embedder, merger, cache=cache, chunk_tokens=chunk_tokens, batch_size=batch_size, device=device
        )
        self.mteb_model_meta = self._model_meta({"embedder": embedder, "merger": merger})

    def _model_meta(self, specs: Mapping[str, object]) -> ModelMeta:
        embedder, merger = self.model.embedder, self.model.merger
        merger_spec = specs["merger"] if isinstance(specs["merger"], str | Path) else merger.name
        loadable = all(isinstance(spec, str | Path) for spec in specs.values())
        return ModelMeta(
            name=f"vbert/{_label(embedder.name)}+{_label(merger_spec)}",
            revision=f"{embedder.fingerprint}-{merger.fingerprint}",
            release_date=None,
            languages=None,
            loader=load_vbert_encoder if loadable else None,
            loader_kwargs={key: str(spec) for key, spec in specs.items()} if loadable else {},
            n_parameters=_parameters(embedder, merger),
            memory_usage_mb=None,
            max_tokens=None,  # documents of any length: chunked at the window and merged
            embed_dim=embedder.dim,
            license="mit",
            open_weights=True,
            public_training_code=None,  # shipped in the package (vbert.train), not at a URL
            public_training_data=None,
            framework=["PyTorch", "Transformers", "safetensors"],
            similarity_fn_name=ScoringFunction.COSINE,
            use_instructions=False,
            training_datasets=None,
            adapted_from=getattr(embedder, "name_or_path", None),
            modalities=["text"],
            model_type=["dense"],
        )

    def encode(
        self,
        inputs,
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        out = np.zeros((len(texts), self.model.embedder.dim), dtype=np.float32)
        rows = [row for row, text in enumerate(texts) if isinstance(text, str) and text.strip()]
        if not rows:
            return out
        kept = [texts[row] for row in rows]
        if prompt_type == PromptType.query:
            out[rows] = self.encode_queries(kept)
        else:
            out[rows] = self.model.encode(kept)
        return out

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Queries as the embedder embeds them; a query longer than the window is chunked and merged."""
        from vbert.integrations._shared import encode_queries

        return encode_queries(self.model, texts)


def load_vbert_encoder(model_name: str, revision: str | None = None, **kwargs: Any) -> VbertEncoder:
    """mteb's loader signature (``ModelMeta.load_model``): the name and revision come from the meta."""
    return VbertEncoder(**kwargs)


class HeldOutRetrieval(AbsTaskRetrieval):
    """Deep-paragraph retrieval on documents you hold out: find the long document a paragraph is from.

    Built in memory by :func:`held_out_retrieval_task`; nothing is downloaded.
    """

    metadata = TaskMetadata(
        name="VbertHeldOutDeepParagraph",
        description="Find the long document (2k-16k tokens) that a paragraph comes from; built in memory "
        "from a held-out split of the user's own corpus.",
        reference=None,
        dataset={"path": "vbert/held-out", "revision": "local"},
        type="Retrieval",
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=["eng-Latn"],
        main_score="ndcg_at_10",
        date=None,
        domains=None,
        task_subtypes=None,
        license="not specified",
        annotations_creators="derived",
        dialect=None,
        sample_creation="found",
        bibtex_citation="",
    )

    def __init__(self, split_data: RetrievalSplitData, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._split_data = split_data

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        self.dataset = {"default": {"test": self._split_data}}
        self.data_loaded = True


def held_out_retrieval_task(
    articles: Iterable,
    embedder,
    *,
    split: str = "test",
    seed: int = 0,
    fractions: Mapping[str, float] | Sequence[float] | None = None,
    **build_options: Any,
) -> HeldOutRetrieval:
    """An MTEB retrieval task from the ``split`` articles (vbert's document splits) of a corpus.

    ``build_options`` go to :func:`vbert.evaluation.retrieval.build_deep_paragraph_task`
    (``min_tokens``, ``max_tokens``, ``max_documents``, ``query_tokens``).
    """
    from vbert.data.splits import DEFAULT_FRACTIONS, filter_split
    from vbert.evaluation.retrieval import build_deep_paragraph_task

    held_out = list(filter_split(articles, split, seed, fractions or DEFAULT_FRACTIONS))
    try:
        task = build_deep_paragraph_task(held_out, embedder, seed=seed, **build_options)
    except ValueError as err:
        raise DataError(f"the {split!r} split gives no retrieval task: {err}") from err
    query_ids = [f"q{index}" for index in range(len(task.queries))]
    split_data = RetrievalSplitData(
        corpus=Dataset.from_dict({"id": task.document_ids, "text": task.documents}),
        queries=Dataset.from_dict({"id": query_ids, "text": task.queries}),
        relevant_docs={
            qid: {task.document_ids[target]: 1} for qid, target in zip(query_ids, task.targets, strict=True)
        },
        top_ranked=None,
    )
    return HeldOutRetrieval(split_data)
