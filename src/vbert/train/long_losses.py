"""Losses for training on sequences of 16–128 chunks (issue 12), as pure torch functions.

They are meant to become objectives of the OBJECTIVES registry (one file each); until then they
are plain functions over tensors, tested on their own.

* :func:`chunk_to_sequence_loss` — each chunk (or a query vector) must pick the merged vector
  of its own sequence among the batch's: the in-batch, retrieval direction of membership. With
  query-prefixed vectors of sentences from the document it is the query→document loss.
* :func:`prefix_membership_loss` — inside one sequence, merged vectors of prefixes: a prefix
  must be closer to its own chunks than to the chunks after it (Top-Down), and a chunk closer
  to the prefixes that contain it than to those that do not (Bottom-Up). This is what Finesse
  measures, on real coherent sequences instead of random mixtures.
* the in-batch sequence→chunks direction is :func:`vbert.train.objectives.chunk_contrastive_loss`;
  the anchor that keeps merged vectors in the embedder's space is ``distill_loss`` (cosine) to
  a reference vector (the teacher's, or a frozen starting merger's).

Shapes: ``x`` (B, N, d) right-padded chunk vectors, ``mask`` (B, N) with 1 = real chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vbert.errors import ConfigError


def _check_temperature(temperature: float) -> None:
    if temperature <= 0:
        raise ConfigError(f"temperature must be positive, got {temperature}")


def _multi_positive_nce(logits: torch.Tensor, positive: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean over rows: logsumexp(valid) − logsumexp(positive), for rows with a positive and a negative.

    ``logits``, ``positive`` and ``valid`` share a shape (..., C); ``positive`` ⊆ ``valid``.
    Returns 0 (with a graph) when no row qualifies.
    """
    negative = valid & ~positive
    usable = positive.any(dim=-1) & negative.any(dim=-1)
    if not usable.any():
        return logits.sum() * 0.0
    all_terms = torch.logsumexp(logits.masked_fill(~valid, float("-inf")), dim=-1)
    pos_terms = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=-1)
    return (all_terms - pos_terms)[usable].mean()


def chunk_to_sequence_loss(
    queries: torch.Tensor, pooled: torch.Tensor, owner: torch.Tensor, temperature: float = 0.05
) -> torch.Tensor:
    """InfoNCE of each query vector (Q, d) over the batch's merged vectors (B, d); ``owner`` (Q,) its sequence.

    ``owner`` may also be a bool (Q, B) matrix when a query belongs to several sequences (an
    article's chunk that also sits in a concatenation of the same batch).
    """
    _check_temperature(temperature)
    logits = F.normalize(queries.float(), dim=-1) @ F.normalize(pooled.float(), dim=-1).T / temperature
    if owner.dtype != torch.bool:
        owner = F.one_hot(owner.long(), pooled.shape[0]).bool()
    return _multi_positive_nce(logits, owner, torch.ones_like(owner))


def owners_of_chunks(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The real chunks of a batch (R, d) and which sequences hold an exact copy of each (R, B) bool."""
    real = mask.bool()
    chunks = x[real]
    owner = torch.arange(x.shape[0], device=x.device)[:, None].expand_as(real)[real]  # (R,)
    _, chunk_id = torch.unique(chunks.float(), dim=0, return_inverse=True)
    holds = torch.zeros(int(chunk_id.max()) + 1, x.shape[0], dtype=torch.bool, device=x.device)
    holds[chunk_id, owner] = True
    return chunks, holds[chunk_id]


def prefix_membership_loss(
    prefix_pooled: torch.Tensor,
    prefix_lengths: torch.Tensor,
    x: torch.Tensor,
    mask: torch.Tensor,
    temperature: float = 0.05,
) -> dict[str, torch.Tensor]:
    """Top-Down and Bottom-Up membership of a sequence's chunks in merged vectors of its prefixes.

    Args:
        prefix_pooled: (B, K, d) merged vectors of K prefixes of each sequence.
        prefix_lengths: (B, K) the prefixes' lengths in chunks (1 ≤ length ≤ the sequence's).
        x, mask: the sequences, (B, N, d) and (B, N).

    Returns ``{"top_down", "bottom_up"}``: TD makes prefix k pick its chunks (j < length_k) over
    the sequence's later chunks; BU makes chunk j pick the prefixes that contain it over those
    that do not. Rows without both a positive and a negative do not count.
    """
    _check_temperature(temperature)
    if prefix_pooled.shape[:2] != prefix_lengths.shape:
        raise ValueError(
            f"prefix_pooled {tuple(prefix_pooled.shape)} and prefix_lengths {tuple(prefix_lengths.shape)} disagree"
        )
    chunks = F.normalize(x.float(), dim=-1)  # (B, N, d)
    prefixes = F.normalize(prefix_pooled.float(), dim=-1)  # (B, K, d)
    logits = prefixes @ chunks.transpose(1, 2) / temperature  # (B, K, N)
    position = torch.arange(x.shape[1], device=x.device)
    real = mask.bool()[:, None, :]  # (B, 1, N)
    member = (position[None, None, :] < prefix_lengths[:, :, None]) & real  # (B, K, N)
    top_down = _multi_positive_nce(logits, member, real.expand_as(member))
    bottom_up = _multi_positive_nce(
        logits.transpose(1, 2), member.transpose(1, 2), real.transpose(1, 2).expand(-1, -1, member.shape[1])
    )
    return {"top_down": top_down, "bottom_up": bottom_up}


def sample_prefix_lengths(lengths: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """(B, k) prefix lengths, uniform in [1, length − 1] per sequence (1 for sequences of one chunk)."""
    if k < 1:
        raise ConfigError(f"need at least one prefix per sequence, got {k}")
    upper = (lengths.cpu().long() - 1).clamp(min=1)  # (B,)
    draws = torch.rand((len(lengths), k), generator=generator)
    return (1 + (draws * upper[:, None]).long()).clamp(max=upper[:, None]).to(lengths.device)


def prefix_masks(mask: torch.Tensor, prefix_lengths: torch.Tensor) -> torch.Tensor:
    """(B·K, N) attention masks of the prefixes, sequence-major: row b·K + k is prefix k of sequence b."""
    position = torch.arange(mask.shape[1], device=mask.device)
    masks = (position[None, None, :] < prefix_lengths[:, :, None]) & mask.bool()[:, None, :]
    return masks.reshape(-1, mask.shape[1]).to(mask.dtype)


def anchor_to_mean(pooled: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of 1 − cos(merged vector, mean of its chunks): keeps merged vectors in the
    embedder's space (``pooled`` (B, d), chunks ``x`` (B, L, d), ``mask`` (B, L))."""
    weights = mask.to(x.dtype)[..., None]
    mean = (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)  # (B, d)
    return (1.0 - F.cosine_similarity(pooled.float(), mean.float(), dim=-1)).mean()
