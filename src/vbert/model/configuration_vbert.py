"""Configuration of the vector sequence merger (vBERT)."""

from __future__ import annotations

from typing import Literal, get_args

from transformers import PretrainedConfig

PositionMode = Literal["ppe", "additive", "none"]
Activation = Literal["gelu", "relu", "silu"]
POSITION_MODES: tuple[str, ...] = get_args(PositionMode)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)


class SequenceMergerConfig(PretrainedConfig):
    """Settings of a :class:`SequenceMergerModel`.

    Args:
        d_model: width of the chunk embeddings and of the encoder (384 for
            multilingual-e5-small, 768 for multilingual-e5-base).
        num_layers, num_heads, ffn_dim, dropout, activation: the pre-LayerNorm
            Transformer encoder.
        position_mode: ``"ppe"`` (Paired Positional Encoding: the sequence is duplicated
            and positions overwrite ``ppe_dim`` dimensions of each copy), ``"additive"``
            (a single copy with sinusoidal positions added onto every dimension, the
            classic Transformer way; kept for ablations) or ``"none"`` (a single copy,
            no positions: an order-blind set encoder).
        ppe_dim: width of the positional slot in each copy; even, at most ``d_model // 2``.
            A runtime setting of the same weights: change it on a loaded model.
        pe_base: base of the sinusoid frequencies.
        residual_to_mean: if True, ``pooler_output = mean(real inputs) + head(CLS)`` with
            the head initialised to zero, so an untrained model is exactly mean pooling.
        layer_norm_eps, initializer_range: numerics and initialisation.
        embedder_name, embedder_fingerprint: the base embedder the merger was trained for
            (recorded by the trainer; a different embedder gets a warning at use).
    """

    model_type = "vbert-merger"

    def __init__(
        self,
        d_model: int = 384,
        num_layers: int = 4,
        num_heads: int = 6,
        ffn_dim: int = 1536,
        dropout: float = 0.1,
        activation: Activation = "gelu",
        position_mode: PositionMode = "ppe",
        ppe_dim: int = 16,
        pe_base: float = 10000.0,
        residual_to_mean: bool = True,
        layer_norm_eps: float = 1e-5,
        initializer_range: float = 0.02,
        embedder_name: str | None = None,
        embedder_fingerprint: str | None = None,
        **kwargs,
    ) -> None:
        if position_mode not in POSITION_MODES:
            raise ValueError(f"position_mode must be one of {POSITION_MODES}, got {position_mode!r}")
        for name, value in (
            ("d_model", d_model),
            ("num_layers", num_layers),
            ("num_heads", num_heads),
            ("ffn_dim", ffn_dim),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if pe_base <= 0:
            raise ValueError(f"pe_base must be positive, got {pe_base}")
        self.d_model = d_model
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.ffn_dim = ffn_dim
        self.dropout = dropout
        self.activation = activation
        self.position_mode = position_mode
        self.ppe_dim = ppe_dim
        self.pe_base = pe_base
        self.residual_to_mean = residual_to_mean
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.embedder_name = embedder_name
        self.embedder_fingerprint = embedder_fingerprint
        super().__init__(**kwargs)
        check_ppe_dim(ppe_dim, d_model)

    @property
    def hidden_size(self) -> int:
        return self.d_model


def check_ppe_dim(ppe_dim: int, d_model: int) -> None:
    """PPE needs an even slot (sin/cos pairs) no wider than half the embedding."""
    if ppe_dim < 0 or ppe_dim % 2 or ppe_dim > d_model // 2:
        raise ValueError(
            f"ppe_dim must be an even number between 0 and d_model // 2 = {d_model // 2}, got {ppe_dim}: "
            "wider slots would overwrite some dimensions in both copies"
        )
