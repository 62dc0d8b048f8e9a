"""#16 defect 4: every output row's id names its document unambiguously."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import assert_one_line_error, run, write_jsonl

from vbert.errors import DataError


def _ids(output: Path) -> list[str]:
    return json.loads(output.with_suffix(".ids.json").read_text(encoding="utf-8"))["ids"]


def test_text_files_are_named_by_their_path_relative_to_the_given_root(tmp_path, tiny_model_dir):
    root = tmp_path / "docs"
    for rel in ("a/x.txt", "b/x.txt", "x.md"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"the text of {rel}", encoding="utf-8")
    output = tmp_path / "out.npy"

    result = run("merge", root, root / "x.md", "-o", output, "--merger", "mean", "--embedder", tiny_model_dir)
    assert_one_line_error(result, 3, "'x.md'", "twice")

    result = run("merge", root, "-o", output, "--merger", "mean", "--embedder", tiny_model_dir)
    assert result.exit_code == 0, result.output
    assert _ids(output) == ["a/x.txt", "b/x.txt", "x.md"]


def test_jsonl_ids_are_kept_as_given_when_strings_or_integers(tmp_path, tiny_model_dir):
    docs = write_jsonl(
        tmp_path / "docs.jsonl",
        [
            {"id": 0, "text": "zero"},
            {"id": "0x", "text": "a string id"},
            {"id": 12, "text": "twelve", "title": "not the id"},
            {"text": "no id at all"},
        ],
    )
    output = tmp_path / "out.npy"
    result = run("embed", docs, "-o", output, "--embedder", tiny_model_dir)
    assert result.exit_code == 0, result.output
    assert _ids(output) == ["0", "0x", "12", "docs.jsonl:4"]


@pytest.mark.parametrize("bad_id", [{"x": 1}, [1], 1.5, True])
def test_other_id_types_are_an_input_error(tmp_path, tiny_model_dir, bad_id):
    docs = write_jsonl(
        tmp_path / "docs.jsonl", [{"id": "fine", "text": "one"}, {"id": bad_id, "text": "two"}]
    )
    result = run("merge", docs, "-o", tmp_path / "out.npy", "--merger", "mean", "--embedder", tiny_model_dir)
    assert_one_line_error(result, 3, "docs.jsonl:2", "'id' must be a string or an integer")
    assert not (tmp_path / "out.npy").exists()


def test_duplicate_ids_are_an_input_error_naming_both_places(tmp_path):
    from vbert.data.corpora.files import read_documents

    docs = write_jsonl(tmp_path / "docs.jsonl", [{"id": 1, "text": "one"}, {"id": "1", "text": "also one"}])
    with pytest.raises(DataError, match=r"'1' is given twice .*docs.jsonl:1 and .*docs.jsonl:2"):
        read_documents([docs])


def test_a_single_file_is_named_by_its_file_name(tmp_path):
    from vbert.data.corpora.files import read_documents

    (tmp_path / "notes.txt").write_text("some notes", encoding="utf-8")
    (tmp_path / "empty.md").write_text("  \n", encoding="utf-8")
    assert read_documents([tmp_path / "notes.txt", tmp_path / "empty.md"]) == [("notes.txt", "some notes")]
