import pytest
import torch
import torch.nn.functional as F

from vbert.errors import ConfigError
from vbert.model import SequenceMergerConfig, SequenceMergerModel
from vbert.train.long_losses import (
    anchor_to_mean,
    chunk_to_sequence_loss,
    owners_of_chunks,
    prefix_masks,
    prefix_membership_loss,
    sample_prefix_lengths,
)


def _orthogonal_sequences(b: int = 3, n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.eye(b * n)[: b * n].reshape(b, n, b * n)  # every chunk its own axis
    mask = torch.ones(b, n)
    mask[0, 4:] = 0  # sequence 0 has 4 real chunks
    return x, mask


def _prefix_means(x, mask, lengths):
    pooled = []
    for b in range(x.shape[0]):
        pooled.append(torch.stack([x[b, : int(k)].mean(0) for k in lengths[b]]))
    return torch.stack(pooled)


def test_chunk_to_sequence_prefers_the_right_owner():
    x, mask = _orthogonal_sequences()
    pooled = F.normalize((x * mask[..., None]).sum(1), dim=-1)
    chunks, owners = owners_of_chunks(x, mask)
    assert chunks.shape[0] == int(mask.sum()) and owners.sum(1).eq(1).all()
    right = chunk_to_sequence_loss(chunks, pooled, owners)
    wrong = chunk_to_sequence_loss(chunks, pooled.roll(1, dims=0), owners)
    assert right < 0.1 < wrong
    owner_index = owners.float().argmax(1)
    assert torch.allclose(chunk_to_sequence_loss(chunks, pooled, owner_index), right)
    with pytest.raises(ConfigError):
        chunk_to_sequence_loss(chunks, pooled, owners, temperature=0)


def test_a_chunk_shared_by_two_sequences_has_two_owners():
    x, mask = _orthogonal_sequences()
    x[1, 0] = x[0, 0]
    _, owners = owners_of_chunks(x, mask)
    assert owners[0].tolist() == [True, True, False]


def test_prefix_membership_rewards_vectors_that_keep_their_prefixes_chunks():
    x, mask = _orthogonal_sequences()
    lengths = torch.tensor([[1, 3], [2, 5], [3, 4]])
    faithful = prefix_membership_loss(_prefix_means(x, mask, lengths), lengths, x, mask)
    full = (x * mask[..., None]).sum(1, keepdim=True) / mask.sum(1)[:, None, None]
    blind = prefix_membership_loss(full.expand(-1, 2, -1), lengths, x, mask)  # every prefix = whole sequence
    assert faithful["top_down"] < blind["top_down"]
    assert faithful["bottom_up"] < blind["bottom_up"]
    with pytest.raises(ValueError, match="disagree"):
        prefix_membership_loss(full, lengths, x, mask)


def test_prefix_lengths_and_masks():
    lengths = torch.tensor([1, 2, 9])
    drawn = sample_prefix_lengths(lengths, 50, torch.Generator().manual_seed(0))
    assert drawn.shape == (3, 50)
    assert drawn[0].eq(1).all() and drawn[1].eq(1).all() and drawn[2].min() >= 1 and drawn[2].max() <= 8
    mask = torch.ones(2, 4)
    mask[1, 3] = 0
    masks = prefix_masks(mask, torch.tensor([[1, 4], [2, 4]]))
    assert masks.tolist() == [[1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]]


def test_a_merger_learns_prefix_membership():
    torch.manual_seed(0)
    model = SequenceMergerModel(
        SequenceMergerConfig(d_model=16, num_layers=1, num_heads=2, ffn_dim=32, ppe_dim=4)
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = F.normalize(torch.randn(8, 12, 16) + 2.0 * torch.randn(8, 1, 16), dim=-1)  # topical sequences
    mask = torch.ones(8, 12)
    generator = torch.Generator().manual_seed(0)

    def loss() -> torch.Tensor:
        lengths = sample_prefix_lengths(mask.sum(1), 3, generator)
        flat = model(x.repeat_interleave(3, 0), attention_mask=prefix_masks(mask, lengths)).pooler_output
        terms = prefix_membership_loss(flat.reshape(8, 3, 16), lengths, x, mask, temperature=0.1)
        return terms["top_down"] + terms["bottom_up"]

    with torch.no_grad():
        before = torch.stack([loss() for _ in range(5)]).mean()
    for _ in range(60):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    with torch.no_grad():
        after = torch.stack([loss() for _ in range(5)]).mean()
    assert after < before - 0.05


def test_anchor_to_mean_is_zero_at_the_mean_and_ignores_padding():
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [9.0, -9.0]]])  # the third chunk is padding
    mask = torch.tensor([[True, True, False]])
    assert anchor_to_mean(torch.tensor([[0.5, 0.5]]), x, mask).item() == pytest.approx(0.0, abs=1e-6)
    assert anchor_to_mean(torch.tensor([[1.0, 0.0]]), x, mask).item() == pytest.approx(1 - 2**-0.5, abs=1e-6)
