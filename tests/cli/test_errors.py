"""#16 defect 8: wrong mergers, outputs and options are one ``error:`` line with the kind's exit code.

Outputs and options are checked before any document is read or embedded.
"""

from __future__ import annotations

import json
import pickle
import shutil
import time
from pathlib import Path

import pytest

import vbert
from tests.cli.cli_runner import assert_one_line_error, run


@pytest.fixture
def no_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if a command starts embedding work: these errors must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("the command loaded an embedder before validating its options")

    monkeypatch.setattr(vbert, "load_embedder", refuse)


@pytest.fixture
def folder_without_weights(tmp_path: Path, tiny_merger_dir: Path) -> Path:
    folder = tmp_path / "no-weights"
    folder.mkdir()
    shutil.copy(tiny_merger_dir / "config.json", folder / "config.json")
    return folder


@pytest.fixture
def pickle_as_safetensors(tmp_path: Path, tiny_merger_dir: Path) -> Path:
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(tiny_merger_dir / "config.json", folder / "config.json")
    (folder / "model.safetensors").write_bytes(pickle.dumps({"weight": [1.0, 2.0]}))
    return folder


@pytest.fixture
def garbage_safetensors(tmp_path: Path, tiny_merger_dir: Path) -> Path:
    folder = tmp_path / "garbage"
    shutil.copytree(tiny_merger_dir, folder)
    (folder / "model.safetensors").write_bytes(b"\xff" * 64)
    return folder


BAD_MERGERS = {
    "folder_without_weights": (2, "has no model.safetensors"),
    "pickle_as_safetensors": (4, "not a valid safetensors file"),
    "garbage_safetensors": (4, "not a valid safetensors file"),
}


@pytest.mark.parametrize("fixture", sorted(BAD_MERGERS))
def test_merge_with_a_broken_merger_folder(request, tmp_path, three_docs, no_embedding, fixture):
    code, fragment = BAD_MERGERS[fixture]
    folder = request.getfixturevalue(fixture)
    result = run("merge", three_docs, "-o", tmp_path / "out.npy", "--merger", folder)
    assert_one_line_error(result, code, fragment)


@pytest.mark.parametrize("fixture", sorted(BAD_MERGERS))
def test_export_hub_from_a_broken_merger_folder(request, tmp_path, fixture):
    code, fragment = BAD_MERGERS[fixture]
    result = run("export-hub", request.getfixturevalue(fixture), tmp_path / "export")
    assert_one_line_error(result, code, fragment)
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nosuchmerger", "unknown merger 'nosuchmerger': not a registered name (mean, mean-weighted"),
        ("./no/such/folder", "no such folder"),
        ("/no/such/folder", "no such folder"),
        ("~/no-such-merger", "no such folder"),
        ("merger.safetensors", "no such folder"),
    ],
)
def test_an_unknown_merger_name_is_not_looked_up_on_the_hub(
    tmp_path, three_docs, no_embedding, name, message
):
    started = time.perf_counter()
    result = run("merge", three_docs, "-o", tmp_path / "out.npy", "--merger", name)
    assert_one_line_error(result, 2, message)
    assert time.perf_counter() - started < 5  # no network round trip
    assert_one_line_error(run("export-hub", name, tmp_path / "export"), 2, message)


def test_export_hub_onto_an_existing_file_or_full_folder(tmp_path, tiny_merger_dir):
    existing = tmp_path / "taken"
    existing.write_text("keep me", encoding="utf-8")
    assert_one_line_error(run("export-hub", tiny_merger_dir, existing), 2, "is an existing file")
    assert existing.read_text(encoding="utf-8") == "keep me"

    full = tmp_path / "full"
    full.mkdir()
    (full / "other.txt").write_text("keep me too", encoding="utf-8")
    assert_one_line_error(run("export-hub", tiny_merger_dir, full), 2, "not empty")
    assert [p.name for p in full.iterdir()] == ["other.txt"]


def test_export_hub_of_a_baseline_is_refused(tmp_path):
    assert_one_line_error(run("export-hub", "mean", tmp_path / "export"), 2, "training-free baseline")


@pytest.mark.parametrize("command", ["embed", "merge"])
def test_output_naming_an_existing_folder(tmp_path, three_docs, no_embedding, command):
    (tmp_path / "out.npy").mkdir()
    assert_one_line_error(run(command, three_docs, "-o", tmp_path / "out.npy"), 2, "is an existing folder")
    (tmp_path / "side.ids.json").mkdir()
    assert_one_line_error(run(command, three_docs, "-o", tmp_path / "side.npy"), 2, "side.ids.json")


@pytest.mark.parametrize("command", ["embed", "merge"])
def test_unsupported_output_suffix_is_refused_before_any_work(tmp_path, three_docs, no_embedding, command):
    result = run(command, three_docs, "-o", tmp_path / "out.csv")
    assert_one_line_error(result, 2, "unsupported output out.csv")
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("command", ["embed", "merge"])
@pytest.mark.parametrize("tokens", ["0", "-3"])
def test_chunk_tokens_must_be_positive(tmp_path, three_docs, no_embedding, command, tokens):
    result = run(command, three_docs, "-o", tmp_path / "out.npy", "--chunk-tokens", tokens)
    assert_one_line_error(result, 2, "--chunk-tokens must be at least 1")


def test_chunk_tokens_above_the_window_is_refused(tmp_path, three_docs, tiny_model_dir):
    window = json.loads((tiny_model_dir / "config.json").read_text())["max_position_embeddings"]
    result = run("embed", three_docs, "-o", tmp_path / "out.npy", "--embedder", tiny_model_dir,
                 "--chunk-tokens", window * 4)  # fmt: skip
    assert_one_line_error(result, 2, "content window")


def test_a_missing_input_is_one_line(tmp_path, no_embedding):
    result = run("merge", tmp_path / "missing.jsonl", "-o", tmp_path / "out.npy", "--merger", "mean")
    assert_one_line_error(result, 2, "missing.jsonl does not exist")
