"""10. Dataset builds: throughput of the training-set builders against the embedder's raw encode.

Calls ``benchmarks/data_throughput.py`` (the data pipeline's own benchmark) on its offline
toy corpus with the suite's embedder and clock. Each build runs once.
"""

from __future__ import annotations

import importlib
from typing import Any

from benchmarks.common import clock
from benchmarks.context import Context

WHAT = (
    "each dataset is built once while the texts sent to the embedder are recorded, then the same texts "
    "are embedded in one encode call; ratio = raw encode time / build time (benchmarks/data_throughput.py)"
)


def run(ctx: Context) -> dict[str, Any]:
    try:
        data_throughput = importlib.import_module("benchmarks.data_throughput")
    except ImportError as err:
        return {
            "status": "not measured",
            "reason": f"benchmarks/data_throughput.py cannot be imported: {err}",
        }
    settings = ctx.settings
    articles = data_throughput.load_articles("toy", None, None, settings.data_articles)
    rows = []
    for kind in settings.data_datasets:
        ctx.log(f"dataset build: {kind} from {len(articles)} toy articles")
        result = data_throughput.measure(kind, articles, ctx.embedder, settings.embed_batch, clock)
        rows.append({key: value for key, value in result.items() if key != "stats"})
    return {"what": WHAT, "corpus": "toy", "rows": rows}
