"""ONNX export of the merger and an onnxruntime merger with the same interface.

:func:`export_onnx` writes one ``.onnx`` file that maps ``inputs_embeds`` (batch, chunks, d)
float32 and ``attention_mask`` (batch, chunks) int64 to ``pooler_output`` (batch, d); the
batch and chunk axes are dynamic. The merger's config and fingerprint travel in the file's
metadata, so :class:`OnnxMerger` can check embedder compatibility like the PyTorch model.
``ppe_dim`` is a runtime setting of the PyTorch model; the export freezes its current value.

The export uses PyTorch's TorchScript-based exporter: the torch.export-based one needs the
``onnxscript`` package, which vbert does not depend on.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import inspect
import json
import tempfile
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from torch import nn

from vbert.errors import ConfigError, IntegrityError
from vbert.files import atomic_path
from vbert.model import SequenceMergerConfig, SequenceMergerModel
from vbert.validation import check_batch, check_sequence

DEFAULT_OPSET = 17
MIN_OPSET = 17
INPUT_NAMES = ("inputs_embeds", "attention_mask")
OUTPUT_NAME = "pooler_output"
PARITY_TOLERANCE = 1e-4
# Sequence lengths of the parity check run after every export; 7 and 33 are padded batches.
PARITY_LENGTHS = (1, 2, 7, 33)
INSTALL_HINT = "pip install 'vbert[onnx]'"


def _require(module: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"the ONNX export and OnnxMerger need the {module} package: {INSTALL_HINT}"
        ) from err


class _PooledOutput(nn.Module):
    """The merger's forward reduced to ``(inputs_embeds, attention_mask) -> pooler_output``.

    Where the model's forward takes ``pooled_only``, the export skips the work the pooler
    does not read (the last block's non-CLS positions).
    """

    def __init__(self, merger: SequenceMergerModel) -> None:
        super().__init__()
        self.merger = merger
        self.options = (
            {"pooled_only": True} if "pooled_only" in inspect.signature(merger.forward).parameters else {}
        )

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.merger(inputs_embeds, attention_mask=attention_mask, **self.options).pooler_output


def export_onnx(
    model: SequenceMergerModel,
    destination: str | Path,
    opset: int = DEFAULT_OPSET,
    verify: bool = True,
) -> float | None:
    """Write ``model`` as an ONNX file at ``destination`` (atomically).

    Args:
        model: a :class:`vbert.SequenceMergerModel` (any device; exported from a CPU copy).
        destination: the ``.onnx`` file to write.
        opset: ONNX opset, at least 17 (LayerNormalization is a single operator from 17 on).
        verify: run the exported file with onnxruntime on padded batches of several lengths
            and raise if it differs from PyTorch by more than 1e-4.

    Returns:
        The largest absolute difference from PyTorch found by the check, or ``None`` when
        ``verify`` is False.
    """
    if not isinstance(model, SequenceMergerModel):
        raise TypeError(
            f"only a trained SequenceMergerModel can be exported to ONNX, got {type(model).__name__}; "
            "training-free baselines need no export"
        )
    if opset < MIN_OPSET:
        raise ConfigError(f"opset {opset} is too old: use opset {MIN_OPSET} or newer")
    destination = Path(destination)
    if destination.suffix != ".onnx":
        raise ConfigError(f"{destination} does not end in .onnx: name the output file like merger.onnx")

    onnx = _require("onnx")
    first = next(model.parameters())
    source = model
    if first.device.type != "cpu" or first.dtype != torch.float32:
        source = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
    was_training = source.training
    source.eval()
    try:
        with tempfile.TemporaryDirectory(prefix="vbert-onnx-") as scratch:
            traced_path = Path(scratch) / "merger.onnx"
            _trace_to_onnx(source, traced_path, opset)
            proto = onnx.load(str(traced_path))
        metadata = {
            "vbert_config": source.config.to_json_string(use_diff=False),
            "vbert_source_fingerprint": source.fingerprint,
            "vbert_name": source.name,
        }
        for key, value in metadata.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.checker.check_model(proto)
        with atomic_path(destination) as tmp:
            onnx.save_model(proto, str(tmp))
            # Checked before the rename: a file that fails the check never reaches the destination.
            difference = parity(source, OnnxMerger(tmp)) if verify else None
            if difference is not None and difference > PARITY_TOLERANCE:
                raise IntegrityError(
                    f"the ONNX export of {source.name!r} differs from PyTorch by {difference:.2e} "
                    f"(more than {PARITY_TOLERANCE:.0e}); nothing was written to {destination}"
                )
    finally:
        source.train(was_training)
    return difference


def _trace_to_onnx(model: SequenceMergerModel, path: Path, opset: int) -> None:
    d = model.config.d_model
    example_embeds = torch.randn(2, 3, d)
    example_mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.long)
    dynamic_axes = {
        "inputs_embeds": {0: "batch", 1: "chunks"},
        "attention_mask": {0: "batch", 1: "chunks"},
        OUTPUT_NAME: {0: "batch"},
    }
    wrapper = _PooledOutput(model).eval()
    with warnings.catch_warnings():
        # The tracer warns about the input checks that turn tensors into Python bools; they only
        # raise errors and never change the computed values, so the trace is exact.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*feature will be removed.*")
        with torch.no_grad():
            torch.onnx.export(
                wrapper,
                (example_embeds, example_mask),
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=list(INPUT_NAMES),
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )


def parity(
    model: SequenceMergerModel,
    onnx_merger: OnnxMerger,
    lengths: tuple[int, ...] = PARITY_LENGTHS,
    seed: int = 0,
) -> float:
    """Largest absolute difference of the unit vectors from PyTorch and onnxruntime.

    Each length ``n`` is checked as a batch of three sequences right-padded to ``n``
    (lengths n, n // 2 + 1 and 1), so padding and the attention mask are exercised.
    """
    rng = np.random.default_rng(seed)
    worst = 0.0
    for n in lengths:
        x = rng.standard_normal((3, n, model.config.d_model)).astype(np.float32)
        x /= np.linalg.norm(x, axis=-1, keepdims=True)
        mask = np.zeros((3, n), dtype=np.int64)
        for row, real in enumerate((n, n // 2 + 1, 1)):
            mask[row, :real] = 1
            x[row, real:] = 0.0
        expected = model.merge_batch(x, mask)
        worst = max(worst, float(np.abs(onnx_merger.merge_batch(x, mask) - expected).max()))
    return worst


class OnnxMerger:
    """A merger exported by :func:`export_onnx`, run with onnxruntime.

    Implements the :class:`vbert.mergers.Merger` interface (``name``, ``fingerprint``,
    ``merge``, ``merge_batch``) and carries the PyTorch model's ``config``, so it can stand
    in for it in :class:`vbert.LongDocumentEncoder`.

    Args:
        path: the ``.onnx`` file.
        threads: intra-op threads for onnxruntime (default: onnxruntime's choice).
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        ort = _require("onnxruntime")
        self.path = Path(path)
        if not self.path.is_file():
            raise ConfigError(f"{self.path} does not exist: write it first with `vbert export-onnx`")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if threads is not None:
            if threads < 1:
                raise ConfigError(f"threads must be at least 1, got {threads}")
            options.intra_op_num_threads = threads
        try:
            self._session = ort.InferenceSession(
                str(self.path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as err:  # onnxruntime raises its own exception types for unreadable files
            raise IntegrityError(
                f"{self.path} is not a loadable ONNX model ({err}); export it again"
            ) from err
        metadata = self._session.get_modelmeta().custom_metadata_map
        if "vbert_config" not in metadata:
            raise IntegrityError(
                f"{self.path} was not written by vbert's export_onnx (no vbert_config metadata)"
            )
        self.config = SequenceMergerConfig.from_dict(json.loads(metadata["vbert_config"]))
        self.source_fingerprint = metadata.get("vbert_source_fingerprint", "")
        self.name = f"onnx:{metadata.get('vbert_name') or self.path.stem}"
        self.fingerprint = hashlib.sha256(self.path.read_bytes()).hexdigest()[:16]
        self.dim = self.config.d_model

    def merge(self, embeddings: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """One sequence (n, d) → one unit vector (d,). ``weights`` are ignored."""
        x = check_sequence(embeddings, self.dim)
        return self.merge_batch(x[None], np.ones((1, x.shape[0]), dtype=np.int64))[0]

    def merge_batch(
        self, embeddings: np.ndarray, mask: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """A right-padded batch (b, n, d) with mask (b, n) → unit vectors (b, d) as float32."""
        x, m = check_batch(embeddings, mask, self.dim)
        if x.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        feeds = {
            INPUT_NAMES[0]: np.ascontiguousarray(x, dtype=np.float32),
            INPUT_NAMES[1]: m.astype(np.int64),
        }
        (pooled,) = self._session.run([OUTPUT_NAME], feeds)
        norms = np.linalg.norm(pooled, axis=-1, keepdims=True)
        return (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
