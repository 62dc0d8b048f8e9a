"""Training-only heads of the vBERT pre-training objectives (not part of the saved merger)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn


class VectorPredictionHead(nn.Module):
    """vMLM head: a hidden state at a masked position → a predicted chunk vector (d_model).

    The BERT prediction-head shape (dense → GELU → LayerNorm → dense), predicting a vector
    instead of vocabulary logits.
    """

    def __init__(self, d_model: int, layer_norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.dense = nn.Linear(d_model, d_model)
        self.activation = nn.GELU()
        self.layer_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.decoder = nn.Linear(d_model, d_model)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.layer_norm(self.activation(self.dense(hidden))))


class ContinuityHead(nn.Module):
    """vNSP classifier: the L2-normalised CLS state → ``Linear(d_model, 2)`` → logits (IsNext 0, NotNext 1).

    The unit vector is scaled by ``sqrt(d_model)`` (unit RMS per component) before the
    linear layer: on a unit vector a freshly initialised layer gives logits of about 0.1 and
    learns several times slower (measured on the synthetic continuity task).
    """

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.classifier = nn.Linear(d_model, 2)
        self.scale = math.sqrt(d_model)

    def forward(self, cls_state: torch.Tensor) -> torch.Tensor:
        return self.classifier(nn.functional.normalize(cls_state, dim=-1) * self.scale)


class PretrainingHeads(nn.Module):
    """Both vBERT heads in one module, so they are saved, loaded and optimised together."""

    FILE_NAME = "pretraining_heads.safetensors"

    def __init__(self, d_model: int, layer_norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.d_model = d_model
        self.mlm = VectorPredictionHead(d_model, layer_norm_eps)
        self.nsp = ContinuityHead(d_model)

    def save(self, folder: str | Path) -> Path:
        """Write the heads as ``pretraining_heads.safetensors`` in ``folder``."""
        path = Path(folder) / self.FILE_NAME
        state = {key: value.detach().cpu().contiguous() for key, value in self.state_dict().items()}
        save_file(state, str(path), metadata={"d_model": str(self.d_model)})
        return path

    def load(self, folder: str | Path) -> None:
        """Load weights written by :meth:`save`; shapes must match this module's."""
        path = Path(folder) / self.FILE_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: the folder holds no vBERT pre-training heads")
        self.load_state_dict(load_file(str(path)))
