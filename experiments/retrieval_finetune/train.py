"""Fine-tune a merger for long-document retrieval on stored vectors (issue 12 experiment).

Loss per step, over ALL training documents at once (they fit in one batch):

* query -> document: a batch of training queries (deep paragraphs embedded with the query prefix)
  must pick their own document's merged vector among every training document of the target's
  language (InfoNCE at ``--temperature``) — exactly the ranking the evaluation scores;
* chunk -> document (``--chunk-weight``): the same with a random chunk of each document as the query;
* anchor (``--anchor-weight``): 1 - cos(merged, mean of the chunks), keeping vectors in the
  embedder's space;
* distillation (``--distill-data``, ``--distill-weight``): 1 - cos(merged, teacher) on a batch of
  n-to-1 pairs (a ``vbert data n-to-1`` folder), the shipped merger's own objective kept as an
  anchor; its validation split's cosine is reported beside the retrieval scores.

Starts from mean pooling (``--init mean``: an untrained residual-to-mean merger returns the mean
exactly) or from the earlier default merger (``--init shipped``: ``distill-10to1``, the default when these
runs were made). Every ``--eval-every`` steps it scores the
validation split (deep-paragraph and cross-lingual-deep nDCG@10 with distractors) and keeps the best
state by their average; the test split is never read here.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vbert.files import atomic_write_json, vbert_home
from vbert.model import SequenceMergerConfig, SequenceMergerModel

SHIPPED = Path(__file__).resolve().parents[2] / "src" / "vbert" / "pretrained" / "distill-10to1"
DATA = vbert_home() / "experiments" / "retrieval-finetune"
TASKS = {0: "deep-paragraph-distractors", 1: "cross-lingual-deep"}


@dataclass
class Part:
    """One split's documents (padded chunk sequences) and queries."""

    inputs: torch.Tensor  # (n_docs, L_max, d)
    mask: torch.Tensor  # (n_docs, L_max) bool
    doc_langs: np.ndarray
    queries: torch.Tensor  # (n_q, d)
    targets: torch.Tensor  # (n_q,)
    candidates: torch.Tensor  # (n_q, n_docs) bool: documents of the target's language
    task: np.ndarray

    @classmethod
    def load(cls, path: Path) -> Part:
        data = np.load(path)
        lengths = data["lengths"]
        d = data["chunks"].shape[1]
        inputs = np.zeros((len(lengths), lengths.max(), d), dtype=np.float32)
        mask = np.zeros((len(lengths), lengths.max()), dtype=bool)
        for i, (start, n) in enumerate(zip(np.cumsum([0, *lengths[:-1]]), lengths, strict=True)):
            inputs[i, :n] = data["chunks"][start : start + n]
            mask[i, :n] = True
        candidates = data["query_langs"][:, None] == data["doc_langs"][None, :]
        return cls(
            torch.from_numpy(inputs),
            torch.from_numpy(mask),
            data["doc_langs"],
            torch.from_numpy(data["queries"]),
            torch.from_numpy(data["query_targets"]),
            torch.from_numpy(candidates),
            data["query_task"],
        )

    def select(self, rows: torch.Tensor) -> Part:
        """The documents ``rows`` (queries are left as they are: only ``inputs``/``mask`` are used)."""
        return Part(
            self.inputs[rows],
            self.mask[rows],
            self.doc_langs[rows.numpy()],
            self.queries,
            self.targets,
            self.candidates,
            self.task,
        )

    def first(self, n: int) -> Part:
        """The first ``n`` documents and the queries that target them."""
        keep = self.targets < n
        return Part(
            self.inputs[:n],
            self.mask[:n],
            self.doc_langs[:n],
            self.queries[keep],
            self.targets[keep],
            self.candidates[keep][:, :n],
            self.task[keep.numpy()],
        )

    def mean(self) -> torch.Tensor:
        m = self.mask[..., None].float()
        return (self.inputs * m).sum(1) / m.sum(1)  # (n_docs, d)


def merge(model: SequenceMergerModel, part: Part, batch: int = 256) -> torch.Tensor:
    out = [
        model(part.inputs[i : i + batch], attention_mask=part.mask[i : i + batch]).pooler_output
        for i in range(0, len(part.inputs), batch)
    ]
    return F.normalize(torch.cat(out), dim=-1)  # (n_docs, d)


def ndcg_at_10(vectors: torch.Tensor, part: Part) -> dict[str, float]:
    scores = part.queries @ vectors.T  # (n_q, n_docs)
    target = scores.gather(1, part.targets[:, None])
    ranks = ((scores >= target) & part.candidates).sum(1).float()  # 1-based, ties count against
    gains = torch.where(ranks <= 10, 1.0 / torch.log2(ranks + 1.0), torch.zeros_like(ranks))
    return {name: 100 * float(gains[torch.from_numpy(part.task == t)].mean()) for t, name in TASKS.items()}


class AttentionPool(torch.nn.Module):
    """A low-capacity merger: a softmax over per-chunk scores (one linear map of the chunk vector and
    its relative position) weights the chunks; starts as mean pooling (zero-initialised scores)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = torch.nn.Linear(dim + 2, 1)
        torch.nn.init.zeros_(self.score.weight)
        torch.nn.init.zeros_(self.score.bias)

    def forward(self, inputs: torch.Tensor, attention_mask: torch.Tensor):
        n = attention_mask.sum(1, keepdim=True).float()  # (B, 1)
        place = torch.arange(inputs.shape[1], dtype=torch.float32)[None, :] / n.clamp(min=1)  # (B, L)
        features = torch.cat(
            [inputs, place[..., None], torch.log(n)[..., None].expand(-1, inputs.shape[1], 1)], -1
        )
        scores = self.score(features).squeeze(-1).masked_fill(~attention_mask, float("-inf"))  # (B, L)
        pooled = (scores.softmax(-1)[..., None] * inputs).sum(1)  # (B, d)
        return type("Output", (), {"pooler_output": pooled})()

    def save_pretrained(self, folder: Path) -> None:
        from safetensors.torch import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file(self.state_dict(), str(folder / "attention-pool.safetensors"))


def build_model(init: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    if init == "attention-pool":
        return AttentionPool(384)
    if init == "shipped":
        return SequenceMergerModel.from_pretrained(SHIPPED, dtype=torch.float32)
    config = SequenceMergerConfig.from_pretrained(SHIPPED)
    return SequenceMergerModel(config)


def in_batch_nce(
    queries: torch.Tensor, docs: torch.Tensor, targets: torch.Tensor, allowed: torch.Tensor, tau: float
):
    logits = (queries @ docs.T / tau).masked_fill(~allowed, float("-inf"))
    return F.cross_entropy(logits, targets)


@dataclass
class Pairs:
    """n-to-1 distillation pairs, padded: chunk vectors and the teacher's vector of the joined text."""

    inputs: torch.Tensor  # (n, L_max, d)
    mask: torch.Tensor  # (n, L_max) bool
    targets: torch.Tensor  # (n, d)

    @classmethod
    def load(cls, folder: Path, split: str) -> Pairs:
        from vbert.train.batches import pad_batch
        from vbert.train.data import open_dataset

        dataset = open_dataset(str(folder), "pairs", split)
        batch = pad_batch([dataset[i] for i in range(len(dataset))])
        return cls(batch["inputs"], batch["attention_mask"].bool(), F.normalize(batch["target"], dim=-1))

    def cosine(self, model: torch.nn.Module, rows: torch.Tensor | None = None) -> torch.Tensor:
        inputs, mask, targets = (
            (self.inputs, self.mask, self.targets)
            if rows is None
            else (self.inputs[rows], self.mask[rows], self.targets[rows])
        )
        merged = F.normalize(model(inputs, attention_mask=mask).pooler_output, dim=-1)
        return (merged * targets).sum(-1)  # (n,)


def train(args: argparse.Namespace) -> dict:
    train_part, val = Part.load(args.data / "train.npz"), Part.load(args.data / "validation.npz")
    pairs = val_pairs = None
    if args.distill_data:
        pairs = Pairs.load(args.distill_data, "train")
        val_pairs = Pairs.load(args.distill_data, "validation")
    if args.train_documents:
        train_part = train_part.first(args.train_documents)
    model = build_model(args.init, args.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / args.warmup) * max(0.0, 1 - s / args.steps)
    )
    generator = torch.Generator().manual_seed(args.seed)
    train_mean = F.normalize(train_part.mean(), dim=-1)
    lengths = train_part.mask.sum(1)
    history, best = [], {"score": -1.0}
    val_mean = ndcg_at_10(F.normalize(val.mean(), dim=-1), val)
    print(f"validation, mean pooling: {val_mean}", flush=True)
    started = time.perf_counter()
    for step in range(args.steps + 1):
        if step % args.eval_every == 0 or step == args.steps:
            model.eval()
            with torch.no_grad():
                scores = ndcg_at_10(merge(model, val), val)
                score = sum(scores.values()) / len(scores)
                if val_pairs is not None:
                    scores["distill-cosine"] = float(val_pairs.cosine(model).mean())
            history.append({"step": step, **scores, "seconds": round(time.perf_counter() - started, 1)})
            print(json.dumps(history[-1]), flush=True)
            if score > best["score"]:
                best = {"score": score, "step": step, **scores}
                model.save_pretrained(args.output)
            model.train()
            with torch.no_grad():
                model.eval()
                history[-1]["train"] = ndcg_at_10(merge(model, train_part), train_part)
                model.train()
        if step == args.steps:
            break
        batch_docs = torch.randperm(len(lengths), generator=generator)[: args.documents]  # (B,)
        docs = merge(model, train_part.select(batch_docs))  # (B, d), with gradients
        position = torch.full((len(lengths),), -1, dtype=torch.long)
        position[batch_docs] = torch.arange(len(batch_docs))
        asked = (
            (position[train_part.targets] >= 0).nonzero().squeeze(1)
        )  # queries whose document is in the batch
        loss = in_batch_nce(
            train_part.queries[asked],
            docs,
            position[train_part.targets[asked]],
            train_part.candidates[asked][:, batch_docs],
            args.temperature,
        )
        if args.chunk_weight > 0:
            n = lengths[batch_docs]
            index = (
                torch.rand(len(batch_docs), generator=generator) * n
            ).long()  # a random chunk per document
            chunks = F.normalize(train_part.inputs[batch_docs, index], dim=-1)
            langs = train_part.doc_langs[batch_docs.numpy()]
            same_lang = torch.from_numpy(langs[:, None] == langs[None, :])
            loss = loss + args.chunk_weight * in_batch_nce(
                chunks, docs, torch.arange(len(batch_docs)), same_lang, args.temperature
            )
        train_mean_batch = train_mean[batch_docs]
        anchor = (1 - (docs * train_mean_batch).sum(-1)).mean()
        loss = loss + args.anchor_weight * anchor
        if pairs is not None:
            rows = torch.randint(len(pairs.targets), (args.distill_batch,), generator=generator)
            loss = loss + args.distill_weight * (1 - pairs.cosine(model, rows)).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    report = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "validation_mean": val_mean,
        "best": best,
        "history": history,
    }
    atomic_write_json(args.output / "experiment.json", report)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--init", choices=("mean", "shipped", "attention-pool"), default="mean")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument(
        "--documents", type=int, default=64, help="documents per step (the in-batch candidates)"
    )
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--temperature", type=float, default=0.02)
    parser.add_argument("--chunk-weight", type=float, default=0.0)
    parser.add_argument("--anchor-weight", type=float, default=1.0)
    parser.add_argument("--distill-data", type=Path, help="a `vbert data n-to-1` folder (train/validation)")
    parser.add_argument("--distill-weight", type=float, default=1.0)
    parser.add_argument("--distill-batch", type=int, default=128, help="distillation pairs per step")
    parser.add_argument(
        "--train-documents", type=int, default=0, help="use only the first N training documents"
    )
    parser.add_argument("--eval-every", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    report = train(args)
    print("best:", json.dumps(report["best"]))


if __name__ == "__main__":
    main()
