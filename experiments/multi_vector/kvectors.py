"""k vectors per document scored by max-sim: a knob between one vector and every chunk vector (issue 12).

A document of n chunk vectors is stored as m = min(k, n) vectors; its score for a query is the
best cosine over them (max-sim over the m vectors). k = 1 is mean pooling; k >= n is full max-sim.

* ``segment means`` (no training): the chunk sequence is cut into m contiguous segments of near-equal
  chunk counts (``np.array_split``); each vector is its segment's mean, L2-normalised.
* ``head`` (learned, :class:`KVectorHead`): per segment, a learned query vector of the segment's slot
  attends over that segment's chunks (plus a relative-position term), and a zero-gated document
  context vector is added. Every learned parameter starts at zero, so at initialisation the head
  returns the segment means exactly and training starts at the baseline. Trained with in-batch
  query -> document InfoNCE over the max-sim scores, candidates restricted to the target's language
  (as the evaluation ranks), optionally anchored to the segment means. The checkpoint with the best
  validation nDCG@10 (mean of the two tasks) is kept; the test split is never read while training.

Subcommands: ``train`` (one run), ``evaluate`` (segment means for every k and the validation-selected
head of every k on one split, paired against mean pooling with max-sim as the reference). Data and
statistics are those of ``experiments/retrieval_finetune`` (imported, not copied).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "retrieval_finetune"))
from evaluate import task_report  # noqa: E402  (experiments/retrieval_finetune/evaluate.py)
from train import DATA, TASKS, Part  # noqa: E402  (experiments/retrieval_finetune/train.py)

from vbert.evaluation.deep_retrieval import METRICS, per_query_metrics, ranks_among_candidates  # noqa: E402
from vbert.evaluation.paired import paired_report  # noqa: E402
from vbert.files import atomic_write_json  # noqa: E402

KS = (1, 2, 4, 8)
DIM = 384


def segment_slots(mask: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Which of the k slots each chunk's segment fills.

    mask (n_docs, L) bool -> slots (n_docs, L) long (-1 on padding), used (n_docs, k) bool.
    A document of n chunks has m = min(k, n) segments (``np.array_split`` sizes); segment i goes to
    slot floor((i + 0.5) / m * k), i.e. the slot whose place in the document matches its own
    (for m = k, slot i), so a slot means the same part of a document at every length.
    """
    lengths = mask.sum(1).tolist()
    slots = torch.full(mask.shape, -1, dtype=torch.long)
    used = torch.zeros((len(lengths), k), dtype=torch.bool)
    for doc, n in enumerate(lengths):
        m = min(k, n)
        for i, segment in enumerate(np.array_split(np.arange(n), m)):
            slot = int((i + 0.5) / m * k)
            slots[doc, torch.from_numpy(segment)] = slot
            used[doc, slot] = True
    return slots, used


def segment_means(inputs: torch.Tensor, slots: torch.Tensor, k: int) -> torch.Tensor:
    """inputs (B, L, d), slots (B, L) -> (B, k, d) L2-normalised segment means (zeros in unused slots)."""
    member = (slots[:, None, :] == torch.arange(k)[None, :, None]).float()  # (B, k, L)
    sums = torch.einsum("bkl,bld->bkd", member, inputs)
    return F.normalize(sums / member.sum(-1, keepdim=True).clamp(min=1), dim=-1)


class KVectorHead(torch.nn.Module):
    """k learned query vectors, each attending over its own segment's chunks, plus a gated context.

    vector_j = sum_l a_jl x_l + gamma_j * context, a_jl = softmax over the chunks l of segment j of
    (q_j . x_l + w_j * relative position of l); context = softmax(c . x_l)-weighted sum of all chunks.
    q, w, c and gamma start at zero: uniform attention within the segment, no context -> segment mean.
    ``context=False`` leaves the context out (attention within each segment only); ``value_map`` adds
    a zero-initialised linear map of each vector (d*d more parameters).
    """

    def __init__(self, k: int, dim: int = DIM, value_map: bool = False, context: bool = True) -> None:
        super().__init__()
        self.k = k
        self.context = context
        self.queries = torch.nn.Parameter(torch.zeros(k, dim))
        self.position = torch.nn.Parameter(torch.zeros(k))
        self.context_score = torch.nn.Parameter(torch.zeros(dim))
        self.context_gate = torch.nn.Parameter(torch.zeros(k))
        self.value_map = torch.nn.Linear(dim, dim) if value_map else None
        if self.value_map is not None:
            torch.nn.init.zeros_(self.value_map.weight)
            torch.nn.init.zeros_(self.value_map.bias)

    def forward(self, inputs: torch.Tensor, mask: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        # inputs (B, L, d), mask (B, L), slots (B, L) -> (B, k, d) L2-normalised
        n = mask.sum(1, keepdim=True).float()  # (B, 1)
        place = (torch.arange(inputs.shape[1])[None, :] + 0.5) / n  # (B, L) relative position
        member = slots[:, None, :] == torch.arange(self.k)[None, :, None]  # (B, k, L)
        logits = (
            torch.einsum("bld,kd->bkl", inputs, self.queries) + self.position[None, :, None] * place[:, None]
        )
        weights = logits.masked_fill(~member, -1e9).softmax(-1)  # (B, k, L); unused slots: finite junk
        vectors = torch.einsum("bkl,bld->bkd", weights, inputs)
        if self.context:
            context_weights = (inputs @ self.context_score).masked_fill(~mask, -1e9).softmax(-1)  # (B, L)
            context = torch.einsum("bl,bld->bd", context_weights, inputs)
            vectors = vectors + self.context_gate[None, :, None] * context[:, None, :]
        if self.value_map is not None:
            vectors = vectors + self.value_map(vectors)
        return F.normalize(vectors, dim=-1)


def max_sim(queries: torch.Tensor, vectors: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
    """queries (q, d), vectors (n, k, d), used (n, k) -> (q, n): each document's best vector."""
    sims = torch.einsum("qd,nkd->qnk", queries, vectors)
    return sims.masked_fill(~used[None], -2.0).amax(-1)


def task_ndcg(scores: torch.Tensor, part: Part) -> dict[str, float]:
    """Mean nDCG@10 per task (x100) of a (n_q, n_docs) score matrix, candidates as in the evaluation."""
    ranks = ranks_among_candidates(scores.numpy(), part.targets.numpy(), part.candidates.numpy())
    ndcg = per_query_metrics(ranks)["ndcg@10"]
    return {name: 100 * float(ndcg[part.task == t].mean()) for t, name in TASKS.items()}


def head_vectors(head: KVectorHead, part: Part, slots: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return head.eval()(part.inputs, part.mask, slots)


def train(args: argparse.Namespace) -> dict:
    train_part, val = Part.load(args.data / "train.npz"), Part.load(args.data / "validation.npz")
    train_slots, train_used = segment_slots(train_part.mask, args.k)
    val_slots, val_used = segment_slots(val.mask, args.k)
    torch.manual_seed(args.seed)
    head = KVectorHead(args.k, value_map=args.value_map, context=args.context)
    initial = head_vectors(head, val, val_slots)
    baseline = segment_means(val.inputs, val_slots, args.k)
    assert torch.allclose(initial[val_used], baseline[val_used], atol=1e-5), (
        "head must start at segment means"
    )
    optimizer = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / args.warmup) * max(0.0, 1 - s / args.steps)
    )
    generator = torch.Generator().manual_seed(args.seed)
    train_means = segment_means(train_part.inputs, train_slots, args.k)  # (n_docs, k, d): the anchor
    n_docs = len(train_part.inputs)
    history, best, best_state = [], {"score": -1.0}, None
    started = time.perf_counter()
    for step in range(args.steps + 1):
        if step % args.eval_every == 0 or step == args.steps:
            scores = task_ndcg(max_sim(val.queries, head_vectors(head, val, val_slots), val_used), val)
            trained = head_vectors(head, train_part, train_slots)
            history.append(
                {
                    "step": step,
                    **scores,
                    "train": task_ndcg(max_sim(train_part.queries, trained, train_used), train_part),
                    "cos_to_segment_means": float((trained * train_means).sum(-1)[train_used].mean()),
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(json.dumps(history[-1]), flush=True)
            score = sum(scores.values()) / len(scores)
            if score > best["score"]:
                best = {"score": score, "step": step, **scores}
                best_state = copy.deepcopy(head.state_dict())
        if step == args.steps:
            break
        head.train()
        batch = torch.randperm(n_docs, generator=generator)[: args.documents]  # (B,)
        vectors = head(train_part.inputs[batch], train_part.mask[batch], train_slots[batch])  # (B, k, d)
        position = torch.full((n_docs,), -1, dtype=torch.long)
        position[batch] = torch.arange(len(batch))
        asked = (position[train_part.targets] >= 0).nonzero().squeeze(1)  # queries whose document is in
        logits = max_sim(train_part.queries[asked], vectors, train_used[batch]) / args.temperature
        logits = logits.masked_fill(~train_part.candidates[asked][:, batch], float("-inf"))  # (q, B)
        loss = F.cross_entropy(logits, position[train_part.targets[asked]])
        used = train_used[batch]
        anchor = (1 - (vectors * train_means[batch]).sum(-1))[used].mean()
        loss = loss + args.anchor_weight * anchor
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    from safetensors.torch import save_file

    args.output.mkdir(parents=True, exist_ok=True)
    save_file(best_state, str(args.output / "head.safetensors"))
    report = {"args": {k: str(v) for k, v in vars(args).items()}, "best": best, "history": history}
    atomic_write_json(args.output / "experiment.json", report)
    return report


def load_head(folder: Path) -> tuple[KVectorHead, dict]:
    from safetensors.torch import load_file

    report = json.loads((folder / "experiment.json").read_text())
    state = load_file(str(folder / "head.safetensors"))
    context = report["args"].get("context", "True") == "True"  # runs before --no-context had a context
    head = KVectorHead(int(report["args"]["k"]), value_map="value_map.weight" in state, context=context)
    head.load_state_dict(state)
    return head.eval(), report


def select_heads(folders: list[Path]) -> dict[int, tuple[str, KVectorHead]]:
    """Per k, the run with the best validation score (mean of the two tasks' nDCG@10)."""
    chosen: dict[int, tuple[float, str, KVectorHead]] = {}
    for folder in folders:
        head, report = load_head(folder)
        if head.k not in chosen or report["best"]["score"] > chosen[head.k][0]:
            chosen[head.k] = (report["best"]["score"], folder.name, head)
    return {k: (name, head) for k, (_, name, head) in sorted(chosen.items())}


def index_size(used: torch.Tensor, heldout: np.ndarray) -> dict[str, float]:
    """Vectors stored per document (all corpus documents, distractors included) and their bytes."""
    vectors = float(used.sum(1).float().mean())
    return {
        "vectors_per_long_document": float(used[torch.from_numpy(heldout)].sum(1).float().mean()),
        "vectors_per_document": vectors,
        "bytes_float32": vectors * DIM * 4,
        "bytes_float16": vectors * DIM * 2,
    }


def evaluate(args: argparse.Namespace) -> dict:
    data = np.load(args.data / f"{args.split}.npz")
    part = Part.load(args.data / f"{args.split}.npz")
    heads = select_heads(args.runs)
    methods: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # name -> (vectors (n, k, d), used (n, k))
    selected = {}
    for k in KS:
        slots, used = segment_slots(part.mask, k)
        methods["mean" if k == 1 else f"segment-means-k{k}"] = (segment_means(part.inputs, slots, k), used)
        if k in heads:
            name, head = heads[k]
            methods[f"head-k{k}"] = (head_vectors(head, part, slots), used)
            selected[f"head-k{k}"] = name
    methods["max-sim"] = (F.normalize(part.inputs, dim=-1), part.mask)
    report = {
        "split": args.split,
        "selected_runs": selected,
        "index": {name: index_size(used, data["heldout"]) for name, (_, used) in methods.items()},
        "tasks": {},
    }
    for task_id, task in TASKS.items():
        rows = np.flatnonzero(data["query_task"] == task_id)
        q = part.queries[rows]
        targets = part.targets[rows].numpy()
        candidates = part.candidates[rows].numpy()
        metrics = {
            name: per_query_metrics(ranks_among_candidates(max_sim(q, v, u).numpy(), targets, candidates))
            for name, (v, u) in methods.items()
        }
        clusters = data["query_clusters"][rows]
        report["tasks"][task] = {
            **task_report(metrics, clusters),
            "head_vs_segment_means": {  # Δ nDCG@10 of each head against the segment means of its k, paired
                f"k{k}": paired_report(
                    {"segment-means": metrics[means]["ndcg@10"], "head": metrics[f"head-k{k}"]["ndcg@10"]},
                    clusters,
                    "segment-means",
                )["head"]["delta_vs_segment-means"]
                for k in heads
                for means in ["mean" if k == 1 else f"segment-means-k{k}"]
            },
        }
        for name, entry in report["tasks"][task]["metrics"]["ndcg@10"].items():
            line = f"{task:28} {name:18} nDCG@10 {100 * entry['score']['mean']:5.1f}"
            if delta := entry.get("delta_vs_mean"):
                line += f"  Δ {100 * delta['mean']:+5.1f} [{100 * delta['ci_low']:+5.1f}, {100 * delta['ci_high']:+5.1f}]"
            if gap := entry.get("gap_recovered"):
                line += f"  gap {100 * gap['mean']:4.0f}%"
            print(line)
    atomic_write_json(args.output, report)
    return report


def table_order(method: str) -> tuple[float, int]:
    k = {"mean": 1, "max-sim": float("inf")}.get(method) or int(method.rsplit("-k", 1)[1])
    return k, method.startswith("head")


def table(args: argparse.Namespace) -> None:
    """Markdown rows of a report of ``evaluate``: index size, scores, paired Δ and gap recovered."""
    report = json.loads(args.report.read_text())
    tasks = sorted(report["tasks"].items(), key=lambda item: item[0] != TASKS[0])
    print(
        "| task (queries) | method | vectors / doc (long docs) | bytes / doc f32 (f16) | nDCG@10 | R@1 "
        "| MRR@10 | Δ nDCG@10 vs mean [95% CI] | gap to max-sim recovered [95% CI] |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for task, entry in tasks:
        metrics = entry["metrics"]
        for i, method in enumerate(sorted(metrics["ndcg@10"], key=table_order)):
            size = report["index"][method]
            ndcg = metrics["ndcg@10"][method]
            cells = [
                f"{task} ({entry['queries']})" if i == 0 else "",
                method,
                f"{size['vectors_per_document']:.2f} ({size['vectors_per_long_document']:.2f})",
                f"{size['bytes_float32']:,.0f} ({size['bytes_float16']:,.0f})",
                *(f"{100 * metrics[m][method]['score']['mean']:.1f}" for m in METRICS),
            ]
            for key, form, unit in (("delta_vs_mean", "+.1f", ""), ("gap_recovered", ".0f", "%")):
                value = ndcg.get(key)
                cells.append(
                    "—"
                    if not value or value["ci_low"] is None
                    else f"{100 * value['mean']:{form}}{unit} "
                    f"[{100 * value['ci_low']:{form}}, {100 * value['ci_high']:{form}}]"
                )
            print("| " + " | ".join(cells) + " |")
    print("\n| task | k | Δ nDCG@10 head − segment means [95% CI] |\n|---|---|---|")
    for task, entry in tasks:
        for k, delta in entry["head_vs_segment_means"].items():
            low, high = 100 * delta["ci_low"], 100 * delta["ci_high"]
            print(f"| {task} | {k[1:]} | {100 * delta['mean']:+.1f} [{low:+.1f}, {high:+.1f}] |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("train", help="train one k-vector head; keeps the best validation step")
    run.add_argument("--data", type=Path, default=DATA)
    run.add_argument("--output", type=Path, required=True)
    run.add_argument("--k", type=int, required=True)
    run.add_argument("--value-map", action="store_true", help="add a zero-initialised d x d linear map")
    run.add_argument(
        "--context", action=argparse.BooleanOptionalAction, default=True, help="the gated document context"
    )
    run.add_argument("--steps", type=int, default=300)
    run.add_argument("--documents", type=int, default=64, help="documents per step (the in-batch candidates)")
    run.add_argument("--lr", type=float, default=1e-2)
    run.add_argument("--weight-decay", type=float, default=0.0)
    run.add_argument("--warmup", type=int, default=20)
    run.add_argument("--temperature", type=float, default=0.05)
    run.add_argument("--anchor-weight", type=float, default=0.0)
    run.add_argument("--eval-every", type=int, default=25)
    run.add_argument("--seed", type=int, default=0)
    score = commands.add_parser("evaluate", help="segment means and the selected heads on one split")
    score.add_argument(
        "runs", nargs="*", type=Path, help="run folders; the best validation run per k is used"
    )
    score.add_argument("--split", default="test")
    score.add_argument("--data", type=Path, default=DATA)
    score.add_argument("--output", type=Path, required=True)
    rows = commands.add_parser("table", help="Markdown table of an evaluate report")
    rows.add_argument("report", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.command == "train":
        print("best:", json.dumps(train(args)["best"]))
    elif args.command == "evaluate":
        evaluate(args)
    else:
        table(args)


if __name__ == "__main__":
    main()
