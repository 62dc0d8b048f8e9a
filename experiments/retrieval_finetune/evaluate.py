"""Score trained checkpoints against mean pooling, mean-weighted and max-sim on one split, paired.

Per query nDCG@10 / Recall@1 / MRR@10 among the candidates of the target's language (distractors
included), document-clustered (deep) or translation-group-clustered (cross-lingual) paired bootstrap
of every Δ vs mean pooling, and the share of the mean -> max-sim gap recovered
(:func:`vbert.evaluation.paired.paired_report`, the same statistics as ``vbert evaluate retrieval``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from train import DATA, TASKS, AttentionPool, Part, merge  # noqa: E402  (a script beside this one)

from vbert.evaluation.deep_retrieval import METRICS, per_query_metrics, ranks_among_candidates
from vbert.evaluation.paired import paired_report
from vbert.files import atomic_write_json


def load_checkpoint(folder: Path) -> torch.nn.Module:
    from safetensors.torch import load_file

    from vbert.model import SequenceMergerModel

    pool = folder / "attention-pool.safetensors"
    if pool.exists():
        model = AttentionPool(384)
        model.load_state_dict(load_file(str(pool)))
        return model.eval()
    return SequenceMergerModel.from_pretrained(folder, dtype=torch.float32).eval()


def task_report(
    metrics: dict[str, dict[str, np.ndarray]], clusters: np.ndarray, baseline: str = "mean"
) -> dict:
    """One task's queries, clusters and, per metric, every method paired with ``baseline`` (gap to max-sim)."""
    return {
        "queries": len(clusters),
        "clusters": int(len(set(clusters.tolist()))),
        "metrics": {
            m: paired_report({n: v[m] for n, v in metrics.items()}, clusters, baseline, "max-sim")
            for m in METRICS
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="NAME=FOLDER")
    parser.add_argument("--split", default="test")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--baseline", default="mean", help="method every other one is paired with")
    args = parser.parse_args()
    data = np.load(args.data / f"{args.split}.npz")
    part = Part.load(args.data / f"{args.split}.npz")
    vectors = {"mean": F.normalize(part.mean(), dim=-1)}
    weights = torch.zeros(part.mask.shape)
    weights[part.mask] = torch.from_numpy(data["chunk_tokens"])
    weighted = (part.inputs * weights[..., None]).sum(1) / weights.sum(1, keepdim=True)
    vectors["mean-weighted"] = F.normalize(weighted, dim=-1)
    with torch.no_grad():
        for spec in args.checkpoints:
            name, folder = spec.split("=", 1)
            vectors[name] = merge(load_checkpoint(Path(folder)), part)
    chunks = F.normalize(part.inputs, dim=-1)
    report = {"split": args.split, "checkpoints": args.checkpoints, "tasks": {}}
    for task_id, task in TASKS.items():
        rows = np.flatnonzero(data["query_task"] == task_id)
        q = part.queries[rows]
        targets = part.targets[rows].numpy()
        candidates = part.candidates[rows].numpy()
        scores = {name: (q @ v.T).numpy() for name, v in vectors.items()}
        sims = torch.einsum("qd,nld->qnl", q, chunks).masked_fill(~part.mask[None], -2.0)
        scores["max-sim"] = sims.amax(-1).numpy()
        metrics = {
            n: per_query_metrics(ranks_among_candidates(s, targets, candidates)) for n, s in scores.items()
        }
        report["tasks"][task] = task_report(metrics, data["query_clusters"][rows], args.baseline)
        ndcg = report["tasks"][task]["metrics"]["ndcg@10"]
        for name, entry in ndcg.items():
            delta = entry.get("delta_vs_" + args.baseline)
            line = f"{task:28} {name:16} nDCG@10 {100 * entry['score']['mean']:5.1f}"
            if delta:
                line += f"  Δ {100 * delta['mean']:+5.1f} [{100 * delta['ci_low']:+5.1f}, {100 * delta['ci_high']:+5.1f}]"
            print(line)
    atomic_write_json(args.output, report)


if __name__ == "__main__":
    main()
