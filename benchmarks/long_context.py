"""9. One long window vs chunks: what a long-context embedder of the same size would cost.

No long-context multilingual embedder is available offline, so this is a cost proxy: the
base embedder's own architecture with its position table stretched and random weights
(compute does not depend on the weights) runs one window of K x window tokens, against
the same model on K windows of ``window`` tokens (the chunked path) and against the merge.
Re-embedding after an edit costs the long model the whole document; the chunked path
re-embeds one chunk and merges again.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from benchmarks.common import measure, unit_vectors
from benchmarks.context import Context

WHAT = (
    "the base embedder's architecture with a stretched position table and random weights (compute does "
    "not depend on weights) on one window of K x window tokens, against K windows and the merge"
)


def run(ctx: Context) -> dict[str, Any]:
    embedder, merger, settings = ctx.embedder, ctx.merger, ctx.settings
    base = getattr(embedder, "model", None)
    if base is None or not hasattr(base, "config"):
        return {
            "status": "not measured",
            "reason": f"{type(embedder).__name__} exposes no Hugging Face model",
        }
    from transformers import AutoModel

    window = embedder.max_tokens
    longest = window * max(settings.long_context_windows)
    config = copy.deepcopy(base.config)
    offset = getattr(config, "pad_token_id", 0) or 0
    config.max_position_embeddings = max(config.max_position_embeddings, longest + offset + 2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AutoModel.from_config(config, attn_implementation="sdpa").eval()
    vocab = config.vocab_size

    def forward(batch: int, tokens: int) -> None:
        ids = torch.randint(5, vocab, (batch, tokens), generator=torch.Generator().manual_seed(tokens))
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=torch.ones_like(ids))

    forward(1, window)  # warm-up
    rows = []
    for windows in settings.long_context_windows:
        tokens = windows * window
        ctx.log(f"long context: one window of {tokens} tokens vs {windows} x {window}")
        repeats = settings.long_context_repeats
        long = measure(lambda _, t=tokens: forward(1, t), repeats=repeats, warmup=0)
        chunked = measure(lambda _, w=windows: forward(w, window), repeats=repeats, warmup=0)
        x = unit_vectors((windows, merger.config.d_model), seed=windows)
        merge = measure(lambda _, x=x: merger.merge(x), repeats=5, warmup=1)
        rows.append(
            {
                "windows": windows,
                "tokens": tokens,
                "long_window_s": long.median_s,
                "chunked_s": chunked.median_s,
                "merge_s": merge.median_s,
                "long_over_chunked_and_merge": long.median_s / (chunked.median_s + merge.median_s),
                "update_one_chunk_s": chunked.median_s / windows + merge.median_s,
            }
        )
    return {"what": WHAT, "model": type(model).__name__, "rows": rows}
