import numpy as np
import onnx
import pytest
import torch
import typer
from typer.testing import CliRunner

from vbert.cli.bench import export_onnx as export_onnx_command
from vbert.errors import ConfigError, IntegrityError
from vbert.long_document import LongDocumentEncoder
from vbert.mergers import MeanPoolMerger, Merger
from vbert.model import SequenceMergerConfig, SequenceMergerModel
from vbert.onnx_export import MIN_OPSET, OnnxMerger, export_onnx

D = 16


def merger(**overrides) -> SequenceMergerModel:
    """A random merger whose output depends on every layer (the pooler is not left at zero)."""
    torch.manual_seed(0)
    settings = dict(d_model=D, num_layers=2, num_heads=4, ffn_dim=32, ppe_dim=4)
    settings.update(overrides)
    model = SequenceMergerModel(SequenceMergerConfig(**settings))
    torch.nn.init.normal_(model.pooler.weight, std=0.5)
    return model.eval()


def padded_batch(lengths: list[int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = max(lengths)
    x = rng.standard_normal((len(lengths), n, D)).astype(np.float32)
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    mask = (np.arange(n)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
    return x * mask[..., None], mask


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[SequenceMergerModel, OnnxMerger]:
    model = merger()
    path = tmp_path_factory.mktemp("onnx") / "merger.onnx"
    export_onnx(model, path)
    return model, OnnxMerger(path, threads=1)


@pytest.mark.parametrize(
    "lengths",
    [[1], [5], [3, 3, 3, 3, 3, 3, 3], [40, 17, 1], [64, 2], [9, 9, 4, 1, 9]],
    ids=["one-chunk", "single", "batch-7-full", "padded-40", "padded-64", "padded-mixed"],
)
def test_onnx_matches_pytorch_on_several_lengths_and_padded_batches(exported, lengths):
    model, onnx_merger = exported
    x, mask = padded_batch(lengths, seed=len(lengths) * 100 + max(lengths))
    expected = model.merge_batch(x, mask)
    got = onnx_merger.merge_batch(x, mask)
    assert got.shape == (len(lengths), D) and got.dtype == np.float32
    assert np.abs(got - expected).max() <= 1e-4
    # The merger is not plain mean pooling here, or parity would prove little.
    assert np.abs(expected - MeanPoolMerger().merge_batch(x, mask)).max() > 1e-2


@pytest.mark.parametrize(
    "overrides", [{"ppe_dim": 0}, {"position_mode": "additive"}, {"position_mode": "none"}]
)
def test_other_position_modes_export_with_parity(tmp_path, overrides):
    model = merger(**overrides)
    difference = export_onnx(model, tmp_path / "m.onnx")
    assert difference is not None and difference <= 1e-4
    x, mask = padded_batch([6, 2], seed=1)
    assert (
        np.abs(OnnxMerger(tmp_path / "m.onnx").merge_batch(x, mask) - model.merge_batch(x, mask)).max()
        <= 1e-4
    )


def test_export_has_dynamic_axes_opset_and_metadata(exported):
    model, onnx_merger = exported
    proto = onnx.load(str(onnx_merger.path))
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= MIN_OPSET
    embeds = proto.graph.input[0]
    dims = [d.dim_param or d.dim_value for d in embeds.type.tensor_type.shape.dim]
    assert dims == ["batch", "chunks", D]
    assert onnx_merger.source_fingerprint == model.fingerprint
    assert onnx_merger.config.d_model == D and onnx_merger.config.ppe_dim == model.config.ppe_dim


def test_onnx_merger_implements_the_merger_interface(exported):
    _, onnx_merger = exported
    assert isinstance(onnx_merger, Merger)
    assert onnx_merger.name.startswith("onnx:") and len(onnx_merger.fingerprint) == 16
    x, mask = padded_batch([7], seed=3)
    single = onnx_merger.merge(x[0])
    assert single.shape == (D,)
    assert np.allclose(single, onnx_merger.merge_batch(x, mask)[0], atol=1e-6)
    assert np.isclose(np.linalg.norm(single), 1.0, atol=1e-5)


def test_onnx_merger_in_long_document_encoder_matches_pytorch(exported, fake_embedder):
    model, onnx_merger = exported
    documents = [" ".join(f"w{i}x{j}" for j in range(n)) for i, n in enumerate((5, 130, 61, 240))]
    with_torch = LongDocumentEncoder(fake_embedder, model, cache=False, chunk_tokens=20).encode(documents)
    with_onnx = LongDocumentEncoder(fake_embedder, onnx_merger, cache=False, chunk_tokens=20).encode(
        documents
    )
    assert np.abs(with_onnx - with_torch).max() <= 1e-4


def test_export_leaves_the_model_as_it_was(tmp_path):
    model = merger().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    export_onnx(model, tmp_path / "m.onnx")
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not [p for p in tmp_path.iterdir() if p.name != "m.onnx"], "temporary files were left behind"


def test_export_refuses_bad_requests(tmp_path):
    with pytest.raises(ValueError, match="opset"):
        export_onnx(merger(), tmp_path / "m.onnx", opset=MIN_OPSET - 1)
    with pytest.raises(ValueError, match=r"\.onnx"):
        export_onnx(merger(), tmp_path / "m.bin")
    with pytest.raises(TypeError, match="baseline"):
        export_onnx(MeanPoolMerger(), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_onnx_merger_rejects_bad_files_and_inputs(tmp_path, exported):
    with pytest.raises(ConfigError, match="export-onnx"):
        OnnxMerger(tmp_path / "missing.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(IntegrityError, match="not a loadable ONNX model"):
        OnnxMerger(tmp_path / "junk.onnx")
    _, onnx_merger = exported
    x, mask = padded_batch([3, 2], seed=0)
    with pytest.raises(ValueError, match="dimension"):
        onnx_merger.merge_batch(x[..., :8], mask)
    with pytest.raises(ValueError, match="right-padded"):
        onnx_merger.merge_batch(x, mask[:, ::-1].copy())


def test_foreign_onnx_file_is_refused(tmp_path):
    identity = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])],
    )
    onnx.save_model(
        onnx.helper.make_model(identity, opset_imports=[onnx.helper.make_opsetid("", 17)]),
        tmp_path / "f.onnx",
    )
    with pytest.raises(ValueError, match="not written by vbert"):
        OnnxMerger(tmp_path / "f.onnx")


def test_cli_export_onnx(tmp_path):
    model = merger()
    model.save_pretrained(tmp_path / "saved")
    app = typer.Typer()
    app.command("export-onnx")(export_onnx_command)
    app.command("unused")(lambda: None)  # with two commands typer keeps the sub-command name
    runner = CliRunner()
    result = runner.invoke(app, ["export-onnx", str(tmp_path / "saved"), str(tmp_path / "out.onnx")])
    assert result.exit_code == 0, result.output
    assert "max abs difference" in result.output
    x, mask = padded_batch([4, 1], seed=5)
    assert (
        np.abs(OnnxMerger(tmp_path / "out.onnx").merge_batch(x, mask) - model.merge_batch(x, mask)).max()
        <= 1e-4
    )
    refused = runner.invoke(app, ["export-onnx", "mean", str(tmp_path / "mean.onnx")])
    assert refused.exit_code == 2 and "baseline" in refused.output
    missing = runner.invoke(app, ["export-onnx", str(tmp_path / "nowhere"), str(tmp_path / "x.onnx")])
    assert missing.exit_code == 2


def test_a_failed_parity_check_writes_nothing(tmp_path, monkeypatch):
    import vbert.onnx_export as onnx_export

    monkeypatch.setattr(onnx_export, "parity", lambda model, onnx_merger: 1.0)
    with pytest.raises(IntegrityError, match="nothing was written"):
        export_onnx(merger(), tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []
    assert export_onnx(merger(), tmp_path / "m.onnx", verify=False) is None
    assert (tmp_path / "m.onnx").is_file()
