"""vBERT, the vector sequence merger: one vector for a sequence of chunk embeddings.

A long document is cut into chunks, each chunk is embedded by a base text embedder, and
this small pre-LayerNorm Transformer encoder reads the sequence of chunk vectors and
returns one vector for the whole document. The file reads top to bottom:

1. ``sinusoid`` and ``paired_positional_encoding``: Paired Positional Encoding (PPE).
   Chunk embeddings are information-dense, so positions are not *added* onto them.
   The sequence is duplicated; in copy 1 the first ``ppe_dim`` dimensions of each vector
   are *overwritten* with the position vector, in copy 2 the last ``ppe_dim`` dimensions.
   With ``ppe_dim <= d_model / 2`` every original dimension survives, bit for bit, in at
   least one copy.
2. ``Block``: a pre-LayerNorm encoder block (self-attention through PyTorch SDPA, then an MLP).
3. ``SequenceMergerModel``: [CLS, copy 1, copy 2] → blocks → final LayerNorm → pooler.
   Task-agnostic: embeddings and mask in; pre-training (masking, injection, heads) lives in
   ``pretraining_vbert.py``.

This file and ``configuration_vbert.py`` only import torch and transformers, so they can
be copied into a Hugging Face folder and loaded with ``trust_remote_code=True`` where
``vbert`` is not installed.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling

from .configuration_vbert import SequenceMergerConfig, check_ppe_dim


def sinusoid(positions: torch.Tensor, width: int, base: float = 10000.0) -> torch.Tensor:
    """Parameter-free positional vectors of RMS 1, defined for any position.

    For position ``i`` and ``k = 0 .. width/2 - 1``::

        PE(i)[2k]   = sqrt(2) * sin(i / base ** (2k / width))
        PE(i)[2k+1] = sqrt(2) * cos(i / base ** (2k / width))

    Each (sin, cos) pair has squared norm 2, so the mean square over the vector is 1.
    """
    half = torch.arange(width // 2, device=positions.device, dtype=torch.float32)
    inv_freq = base ** (-2.0 * half / width)
    angles = positions.to(torch.float32)[..., None] * inv_freq
    pe = torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2)
    return pe * math.sqrt(2.0)


def _rms(x: torch.Tensor) -> torch.Tensor:
    """Root mean square over the last dimension, in float32, kept as a trailing axis."""
    return x.float().pow(2).mean(dim=-1, keepdim=True).sqrt()


def paired_positional_encoding(
    x: torch.Tensor,
    positions: torch.Tensor,
    ppe_dim: int,
    base: float = 10000.0,
    copy1: torch.Tensor | None = None,
    copy2: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paired Positional Encoding: two copies of ``x`` with positions written into them.

    Args:
        x: (B, N, d) chunk embeddings.
        positions: (B, N) integer position of each chunk within its sequence.
        ppe_dim: width ``p`` of the positional slot; 0 returns the copies unchanged.
        copy1, copy2: optional replacement sequences (B, N, d) used as copy 1 / copy 2
            instead of ``x`` (vMLM injects its predictions this way). Their positional
            slots are overwritten like any other.

    Returns:
        ``(c1, c2)`` where ``c1[..., :p] = PE(i) * rms(c1_i)`` and ``c2[..., d-p:] =
        PE(i) * rms(c2_i)``; every other dimension is the input's, untouched. The scale
        ``rms(v) = ||v|| / sqrt(d)`` is the RMS of the vector the slot is written into,
        i.e. the expected RMS of the slice it replaces (1/sqrt(d) for unit-norm
        embeddings), so positions neither drown nor vanish next to the content.
    """
    c1 = x if copy1 is None else copy1
    c2 = x if copy2 is None else copy2
    if ppe_dim == 0:
        return c1, c2
    d = x.shape[-1]
    pe = sinusoid(positions, ppe_dim, base)
    c1 = torch.cat(((pe * _rms(c1)).to(c1.dtype), c1[..., ppe_dim:]), dim=-1)
    c2 = torch.cat((c2[..., : d - ppe_dim], (pe * _rms(c2)).to(c2.dtype)), dim=-1)
    return c1, c2


class Packing:
    """Where the real positions of a padded (B, T) batch are, so token-wise work can skip padding.

    ``rows`` (P,) indexes the flattened (B * T) positions that are real; ``first`` (B,) is the
    packed index of each row's position 0 (the CLS, always real). Linear layers, norms and the MLP
    run on the packed (P, d) states; only attention scatters them back to (B, T).
    """

    def __init__(self, key_mask: torch.Tensor) -> None:
        self.batch, self.length = key_mask.shape
        self.rows = key_mask.flatten().nonzero().squeeze(1)
        lengths = key_mask.sum(dim=1)
        self.first = lengths.cumsum(dim=0) - lengths

    def scatter(self, x: torch.Tensor) -> torch.Tensor:
        """(P, k) packed → (B, T, k), zeros at the padding."""
        padded = x.new_zeros(self.batch * self.length, x.shape[-1]).index_copy_(0, self.rows, x)
        return padded.view(self.batch, self.length, -1)

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, k) → (P, k), the real positions only."""
        return x.reshape(self.batch * self.length, -1).index_select(0, self.rows)


class SelfAttention(nn.Module):
    def __init__(self, config: SequenceMergerConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model)
        self.out = nn.Linear(config.d_model, config.d_model)
        self.dropout = config.dropout

    def forward(
        self,
        h: torch.Tensor,
        key_mask: torch.Tensor,
        queries: int | None = None,
        packing: Packing | None = None,
    ) -> torch.Tensor:
        """Self-attention over ``h`` (B, T, d), or over packed states (P, d) with ``packing``.

        With ``queries`` only the first ``queries`` positions attend (their outputs alone are
        returned, (B, queries, d)), which is all the pooler needs from the last block; packed
        input allows ``queries=1`` (the CLS) only. Packed input without ``queries`` gives
        packed output (P, d).
        """
        b, t = key_mask.shape
        d = h.shape[-1]
        heads, width = self.num_heads, d // self.num_heads
        if queries is None:
            qkv = self.qkv(h) if packing is None else packing.scatter(self.qkv(h))
            q, k, v = qkv.view(b, t, 3, heads, width).unbind(dim=2)
        else:
            w_q, w_kv = self.qkv.weight.split((d, 2 * d))
            b_q, b_kv = self.qkv.bias.split((d, 2 * d))
            if packing is None:
                first, kv = h[:, :queries], F.linear(h, w_kv, b_kv)
            else:
                if queries != 1:
                    raise ValueError("packed attention computes all queries or the CLS query alone")
                first, kv = h[packing.first][:, None], packing.scatter(F.linear(h, w_kv, b_kv))
            q = F.linear(first, w_q, b_q).view(b, queries, heads, width)
            k, v = kv.view(b, t, 2, heads, width).unbind(dim=2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask[:, None, None, :], dropout_p=self.dropout if self.training else 0.0
        )
        y = y.transpose(1, 2).reshape(b, q.shape[2], d)
        return self.out(y if packing is None or queries is not None else packing.gather(y))


class Block(nn.Module):
    """Pre-LayerNorm encoder block: h + Attn(LN(h)), then h + MLP(LN(h))."""

    def __init__(self, config: SequenceMergerConfig) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.attn = SelfAttention(config)
        self.ln_mlp = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.mlp = nn.Sequential(
            nn.Linear(config.d_model, config.ffn_dim),
            {"gelu": nn.GELU(), "relu": nn.ReLU(), "silu": nn.SiLU()}[config.activation],
            nn.Linear(config.ffn_dim, config.d_model),
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        h: torch.Tensor,
        key_mask: torch.Tensor,
        queries: int | None = None,
        packing: Packing | None = None,
    ) -> torch.Tensor:
        attended = self.dropout(self.attn(self.ln_attn(h), key_mask, queries, packing))
        if queries is not None:
            h = h[:, :queries] if packing is None else h[packing.first][:, None]
        h = h + attended
        return h + self.dropout(self.mlp(self.ln_mlp(h)))


class SequenceMergerPreTrainedModel(PreTrainedModel):
    config_class = SequenceMergerConfig
    base_model_prefix = "merger"
    main_input_name = "inputs_embeds"
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, SequenceMergerModel):
            init.normal_(module.cls, mean=0.0, std=self.config.initializer_range)
            init.normal_(module.mask_embedding, mean=0.0, std=self.config.initializer_range)
            if self.config.residual_to_mean:
                init.zeros_(module.pooler.weight)
                init.zeros_(module.pooler.bias)


class SequenceMergerModel(SequenceMergerPreTrainedModel):
    """The merger: [CLS, copy 1, copy 2] through a pre-LN Transformer encoder.

    Layout of ``last_hidden_state`` (B, 1 + 2N, d) for ``position_mode="ppe"``: index 0 is
    CLS, 1..N copy 1, N+1..2N copy 2. For ``"additive"`` and ``"none"`` there is a single
    copy: (B, 1 + N, d).

    ``pooler_output`` = ``pooler(LN(h_CLS))``, a linear projection of the final, normed
    CLS state; with ``residual_to_mean`` the masked mean of the input vectors is added
    (and the projection starts at zero, so an untrained merger is mean pooling). The
    pooler output is not normalised; :meth:`merge` returns unit vectors.

    ``mask_embedding`` is the learned vector that pre-training puts at masked positions
    (:class:`SequenceMergerForPreTraining` uses it; :meth:`forward` never does). It is stored
    with the merger, as it always was, so saved models and their fingerprints keep their format.
    """

    def __init__(self, config: SequenceMergerConfig) -> None:
        super().__init__(config)
        d = config.d_model
        self.cls = nn.Parameter(torch.zeros(d))
        self.mask_embedding = nn.Parameter(torch.zeros(d))
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        self.ln_final = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.pooler = nn.Linear(d, d)
        self.post_init()

    @property
    def ppe_dim(self) -> int:
        return self.config.ppe_dim

    @ppe_dim.setter
    def ppe_dim(self, value: int) -> None:
        check_ppe_dim(value, self.config.d_model)
        self.config.ppe_dim = value

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        pooled_only: bool = False,
        packed: bool = False,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """Merge a batch of chunk-embedding sequences.

        Args:
            inputs_embeds: (B, N, d) float chunk embeddings; N >= 1, no maximum.
            attention_mask: (B, N), 1 = real chunk, 0 = padding. Optional only when every
                sequence is full length; padding without a mask is a silent bug, so
                zero rows in ``inputs_embeds`` without a mask raise an error.
            pooled_only: compute only what ``pooler_output`` needs: the last block runs its
                attention query, MLP and norms for the CLS position alone (keys and values
                still see every position), about a fifth less work for a 4-layer merger.
                ``last_hidden_state`` is then (B, 1, d), the CLS state only.
            packed: skip the padding in every token-wise operation (projections, MLP, norms):
                the real positions run as one packed (P, d) matrix and only attention sees the
                padded layout, so a right-padded batch costs what its real chunks cost. Same
                output as ``packed=False`` (within float rounding); ``merge_batch`` uses it.
        """
        if kwargs:
            raise TypeError(
                f"unexpected arguments {sorted(kwargs)}; masking and injection belong to "
                "SequenceMergerForPreTraining"
            )
        x, mask = self.check_inputs(inputs_embeds, attention_mask)
        return self.forward_copies(
            x,
            x,
            mask,
            output_hidden_states=output_hidden_states,
            return_dict=return_dict,
            pooled_only=pooled_only,
            packed=packed,
        )

    def forward_copies(
        self,
        copy1: torch.Tensor,
        copy2: torch.Tensor,
        mask: torch.Tensor,
        output_hidden_states: bool = False,
        return_dict: bool = True,
        pooled_only: bool = False,
        packed: bool = False,
    ) -> BaseModelOutputWithPooling:
        """:meth:`forward` with the two PPE copies given separately, on inputs already checked.

        ``forward(x)`` is ``forward_copies(x, x, mask)``. Pre-training feeds different copies
        (its predictions injected into copy 1 and copy 2). ``copy1``, ``copy2``: (B, N, d) in the
        merger's dtype; ``mask``: (B, N) long, as :meth:`check_inputs` returns them. Single-copy
        position modes read ``copy1`` only; the residual mean is always over ``copy1``.
        """
        positions = (mask.long().cumsum(dim=1) - 1).clamp(min=0)
        mode = self.config.position_mode
        if mode == "ppe":
            c1, c2 = paired_positional_encoding(
                copy1, positions, self.config.ppe_dim, self.config.pe_base, copy1=copy1, copy2=copy2
            )
            tokens, key_mask = torch.cat((c1, c2), dim=1), torch.cat((mask, mask), dim=1)
        elif mode == "additive":
            pe = sinusoid(positions, self.config.d_model, self.config.pe_base)
            tokens, key_mask = copy1 + (pe * _rms(copy1)).to(copy1.dtype), mask
        else:
            tokens, key_mask = copy1, mask

        b = copy1.shape[0]
        h = torch.cat((self.cls.to(copy1.dtype).expand(b, 1, -1), tokens), dim=1)
        key_mask = torch.cat((key_mask.new_ones(b, 1), key_mask), dim=1).bool()
        packing = Packing(key_mask) if packed and not output_hidden_states and not key_mask.all() else None
        if packing is not None:
            h = packing.gather(h)  # (P, d)
        hidden_states = [h] if output_hidden_states else None
        last = len(self.blocks) - 1
        for index, block in enumerate(self.blocks):
            h = block(h, key_mask, queries=1 if pooled_only and index == last else None, packing=packing)
            if hidden_states is not None:
                hidden_states.append(h)
        if packing is not None and h.ndim == 2:
            h = packing.scatter(h)  # (B, T, d)
        h = self.ln_final(h)

        pooled = self.pooler(h[:, 0])
        if self.config.residual_to_mean:
            weights = mask.to(copy1.dtype)[..., None]
            pooled = pooled + (copy1 * weights).sum(dim=1) / weights.sum(dim=1)
        if not return_dict:
            return (h, pooled) + ((tuple(hidden_states),) if hidden_states is not None else ())
        return BaseModelOutputWithPooling(
            last_hidden_state=h,
            pooler_output=pooled,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
        )

    def check_inputs(
        self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate a batch; returns the embeddings in the merger's dtype and a long (B, N) mask."""
        x = inputs_embeds
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"inputs_embeds must be a torch.Tensor, got {type(x).__name__}; use merge() for numpy"
            )
        if x.ndim != 3:
            raise ValueError(
                f"inputs_embeds must have shape (batch, n_chunks, d_model), got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(
                f"inputs_embeds must be floating point, got {x.dtype}: the merger reads chunk embeddings, not token ids"
            )
        if x.shape[1] == 0:
            raise ValueError("the sequence has zero chunks: a document must give at least one chunk to merge")
        if x.shape[-1] != self.config.d_model:
            raise ValueError(
                f"embedding dimension {x.shape[-1]} does not match the merger's d_model {self.config.d_model}: "
                "use a merger trained for this embedder"
            )
        if not torch.isfinite(x).all():
            raise ValueError("inputs_embeds contains NaN or inf values; check the embedder output")
        x = x.to(self.pooler.weight.dtype)
        if attention_mask is None:
            if (x.abs().sum(dim=-1) == 0).any():
                raise ValueError(
                    "inputs_embeds has all-zero chunk vectors but no attention_mask: zero padding without a mask "
                    "changes the result; pass attention_mask (1 = real chunk, 0 = padding)"
                )
            return x, torch.ones(x.shape[:2], dtype=torch.long, device=x.device)
        if attention_mask.shape != x.shape[:2]:
            raise ValueError(
                f"attention_mask has shape {tuple(attention_mask.shape)}, expected {tuple(x.shape[:2])} "
                "(one entry per chunk: 1 = real, 0 = padding)"
            )
        if ((attention_mask != 0) & (attention_mask != 1)).any():
            raise ValueError("attention_mask must hold only 0 (padding) and 1 (real chunk)")
        empty = (attention_mask.sum(dim=1) == 0).nonzero().flatten()
        if empty.numel():
            raise ValueError(
                f"attention_mask rows {empty[:5].tolist()} are all zeros: every sequence needs at least one "
                "real chunk; drop empty documents before merging"
            )
        return x, attention_mask.to(torch.long)

    # --- The Merger interface shared with the baselines (numpy in, unit vectors out) ---

    @property
    def name(self) -> str:
        return self.config.name_or_path or "vbert-merger"

    @property
    def fingerprint(self) -> str:
        """Short sha256 of the config and weights; changes whenever either does."""
        volatile = {"transformers_version", "architectures", "dtype", "torch_dtype", "auto_map"}
        settings = {
            k: v for k, v in self.config.to_dict().items() if not k.startswith("_") and k not in volatile
        }
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
        for key, tensor in sorted(self.state_dict().items()):
            digest.update(key.encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def merge(self, embeddings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """One sequence (n, d) → one unit vector (d,). ``weights`` are ignored."""
        x = np.asarray(embeddings)
        if x.ndim != 2:
            raise ValueError(
                f"expected one sequence of shape (n_chunks, dim), got {x.shape}; use merge_batch"
            )
        merged = self.merge_batch(x[None], np.ones(x.shape[:1], dtype=np.int64)[None])[0]
        if not np.isfinite(merged).all():
            raise ValueError(
                f"the merger gave a NaN or infinite vector; the largest input value is {np.abs(x).max():.3g}, "
                "while chunk embeddings are expected to be unit vectors (norm 1): normalise them first"
            )
        return merged

    def merge_batch(
        self, embeddings: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """A padded batch (b, n, d) with mask (b, n) → unit vectors (b, d) as float32.

        Rows are not checked (inputs far from unit norm can give NaN rows);
        ``vbert.mergers.merge_sequences`` is the checked batched path."""
        x = np.asarray(embeddings)
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"chunk embeddings must be floating point, got dtype {x.dtype}")
        device = self.pooler.weight.device
        was_training = self.training
        if was_training:
            self.eval()
        try:
            with torch.inference_mode():
                out = self(
                    torch.as_tensor(x, dtype=torch.float32, device=device),
                    attention_mask=torch.as_tensor(np.asarray(mask), device=device),
                    pooled_only=True,
                    packed=True,
                ).pooler_output
                out = F.normalize(out.float(), dim=-1)
        finally:
            if was_training:
                self.train()
        return out.cpu().numpy()
