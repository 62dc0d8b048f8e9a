"""The shipped merger gives the outputs recorded in golden/default_merger.json (before any refactoring)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from vbert.loading import default_merger_path
from vbert.model import SequenceMergerModel

GOLDEN = json.loads((Path(__file__).parent / "golden" / "default_merger.json").read_text())


def test_shipped_merger_outputs_are_unchanged():
    model = SequenceMergerModel.from_pretrained(default_merger_path(), dtype=torch.float32).eval()
    assert model.fingerprint == GOLDEN["fingerprint"]
    lengths = GOLDEN["lengths"]
    rng = np.random.default_rng(GOLDEN["seed"])
    x = rng.standard_normal((len(lengths), max(lengths), model.config.d_model)).astype(np.float32)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    mask = (np.arange(max(lengths))[None] < np.array(lengths)[:, None]).astype(np.int64)
    x *= mask[..., None]
    np.testing.assert_allclose(model.merge_batch(x, mask), GOLDEN["merged"], atol=1e-5)
    with torch.no_grad():
        pooled = model(torch.from_numpy(x), attention_mask=torch.from_numpy(mask)).pooler_output.numpy()
    np.testing.assert_allclose(pooled, GOLDEN["pooler_output"], atol=1e-5)
