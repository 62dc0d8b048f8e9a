"""Checkpoint files: optimizer and generator states round-trip through safetensors + JSON; atomic layout."""

from __future__ import annotations

import random

import numpy as np
import torch

from vbert.train import checkpoint as ckpt


def test_optimizer_state_round_trip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay}, {"params": rest, "weight_decay": 0.0}], lr=1e-2, betas=(0.8, 0.9)
    )
    for _ in range(3):
        model(torch.randn(5, 4)).pow(2).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
    ckpt.save_optimizer(optimizer, tmp_path)

    fresh = torch.optim.AdamW([{"params": decay}, {"params": rest, "weight_decay": 0.0}], lr=5.0)
    ckpt.load_optimizer(fresh, tmp_path)
    saved, loaded = optimizer.state_dict(), fresh.state_dict()
    assert loaded["param_groups"] == saved["param_groups"]
    assert isinstance(loaded["param_groups"][0]["betas"], tuple)
    for key, state in saved["state"].items():
        for name, value in state.items():
            assert torch.equal(loaded["state"][key][name], value)
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.pt"))


def test_generator_states_round_trip(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    ckpt.save_rng(tmp_path, rank=0)
    expected = (random.random(), np.random.rand(), torch.rand(3))
    random.seed(9)
    np.random.seed(9)
    torch.manual_seed(9)
    assert ckpt.load_rng(tmp_path, rank=0)
    assert (random.random(), np.random.rand()) == expected[:2]
    assert torch.equal(torch.rand(3), expected[2])
    assert not ckpt.load_rng(tmp_path, rank=1)


def test_publish_points_latest_and_prunes(tmp_path):
    for step in (2, 4, 6):
        name = ckpt.checkpoint_name(0, step)
        temp = ckpt.temp_checkpoint_dir(tmp_path, name)
        (temp / ckpt.STATE_FILE).write_text("{}")
        ckpt.publish_checkpoint(temp, tmp_path, name, keep=2)
    root = tmp_path / ckpt.CHECKPOINTS_DIR
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == [
        "stage00-step00000004",
        "stage00-step00000006",
    ]
    assert ckpt.latest_checkpoint(tmp_path) == root / "stage00-step00000006"
    # A half-assembled checkpoint (killed before its rename) is never picked up.
    ckpt.temp_checkpoint_dir(tmp_path, ckpt.checkpoint_name(1, 1))
    (root / ckpt.LATEST_FILE).unlink()
    assert ckpt.latest_checkpoint(tmp_path) == root / "stage00-step00000006"
    # Saving the same step again (after a resume) replaces it.
    temp = ckpt.temp_checkpoint_dir(tmp_path, "stage00-step00000006")
    (temp / ckpt.STATE_FILE).write_text('{"again": true}')
    ckpt.publish_checkpoint(temp, tmp_path, "stage00-step00000006", keep=2)
    assert ckpt.read_json(root / "stage00-step00000006" / ckpt.STATE_FILE) == {"again": True}
    assert ckpt.latest_checkpoint(tmp_path / "elsewhere") is None
