"""``vbert corpus fetch`` / ``vbert corpus stats`` (the sub-app, driven with typer's runner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vbert.cli.corpus import app
from vbert.data.article import Article
from vbert.data.corpora import debian
from vbert.data.corpora.debian import FetchReport, PackageReport
from vbert.data.corpora.store import article_line, sha256_file, write_manifest
from vbert.data.errors import PackageNotFoundError

runner = CliRunner()


@pytest.fixture
def stored_corpus(tmp_path: Path) -> Path:
    rows = {
        "en": [" ".join(["hello"] * 700), "hello world"],
        "ko": [" ".join(["안녕"] * 650)],
    }
    shards = []
    for lang, texts in rows.items():
        path = tmp_path / "converted" / "demo" / f"{lang}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        articles = [Article(f"demo/{lang}/{i}", lang, "", t, "demo", "MIT") for i, t in enumerate(texts)]
        path.write_text("".join(article_line(a) for a in articles), encoding="utf-8")
        shards.append({"path": f"converted/demo/{lang}.jsonl", "sha256": sha256_file(path),
                       "documents": len(texts), "lang": lang, "source": "demo"})  # fmt: skip
    write_manifest(tmp_path, "demo", shards)
    return tmp_path


@pytest.fixture
def word_tokenizer(tmp_path: Path) -> Path:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    tokenizer = Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    path = tmp_path / "tok" / "tokenizer.json"
    path.parent.mkdir()
    tokenizer.save(str(path))
    return path


def test_stats_table_and_json(stored_corpus: Path, word_tokenizer: Path) -> None:
    result = runner.invoke(
        app, ["stats", str(stored_corpus), "--tokenizer", str(word_tokenizer), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(line.split() == ["en", "demo", "2", "702", "1"] for line in lines)
    assert any(line.split() == ["ko", "demo", "1", "650", "1"] for line in lines)
    assert lines[-1] == "languages with >= 100 documents of >= 600 tokens: 0 ()"

    result = runner.invoke(
        app, ["stats", str(stored_corpus), "--tokenizer", str(word_tokenizer), "--json", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    table = json.loads(result.output)
    assert table["en"]["docs_ge_600"] == 1 and table["en"]["documents"] == 2 and table["ko"]["tokens"] == 650
    assert table["ko"]["sources"]["demo"]["docs_ge_600"] == 1
    assert len(list((stored_corpus / "stats").glob("*.json"))) == 1  # counted once, then cached


def test_stats_of_a_folder_of_texts(tmp_path: Path, word_tokenizer: Path) -> None:
    texts = tmp_path / "texts"
    texts.mkdir()
    (texts / "a.jsonl").write_text(
        json.dumps({"text": "un deux trois", "lang": "fr"})
        + "\n"
        + json.dumps({"text": "one two", "lang": "en"})
        + "\n",
        encoding="utf-8",
    )
    args = [
        "stats",
        str(texts),
        "--tokenizer",
        str(word_tokenizer),
        "--json",
        "--langs",
        "fr",
        "--no-progress",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "fr": {
            "documents": 1,
            "tokens": 3,
            "docs_ge_600": 0,
            "sources": {"files": {"documents": 1, "tokens": 3, "docs_ge_600": 0}},
        }
    }


def test_stats_of_the_debian_corpus_dir_with_langs(stored_corpus: Path, word_tokenizer: Path) -> None:
    args = ["stats", "debian", "--corpus-dir", str(stored_corpus), "--langs", "ko", "--json", "--no-progress"]
    result = runner.invoke(app, [*args, "--tokenizer", str(word_tokenizer)])
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.output)) == ["ko"]


def test_stats_errors_are_clear(tmp_path: Path, word_tokenizer: Path) -> None:
    result = runner.invoke(
        app, ["stats", "debian", "--corpus-dir", str(tmp_path), "--tokenizer", str(word_tokenizer)]
    )
    assert result.exit_code == 2 and "vbert corpus fetch debian" in result.output
    result = runner.invoke(app, ["stats", str(tmp_path), "--tokenizer", str(tmp_path / "none.json")])
    assert result.exit_code == 2 and "no tokenizer file" in result.output


def test_fetch_passes_options_and_reports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen = {}

    def fake_fetch(corpus_dir, **options):
        seen.update(options, corpus_dir=corpus_dir)
        options["log"]("debian-faq 11.1: cached")
        report = PackageReport("debian-faq", "debian-faq", "11.1", 500_000, True, True, 0.1)
        return FetchReport(tmp_path, {"documents": 16, "corpus_hash": "abc"}, [report], 2.0)

    monkeypatch.setattr(debian, "fetch_debian", fake_fetch)
    result = runner.invoke(
        app,
        ["fetch", "debian", "--langs", "de,ko", "--langs", "zh-CN", "--packages", "debian-faq-ko",
         "--corpus-dir", str(tmp_path), "--workers", "2", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen["langs"] == ["de", "ko", "zh-CN"] and seen["packages"] == ["debian-faq-ko"]
    assert seen["corpus_dir"] == tmp_path and seen["workers"] == 2 and seen["families"] is None
    assert "16 documents from 1 packages (0.5 MB downloaded)" in result.output
    assert "corpus hash abc" in result.output


def test_fetch_failures_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(corpus_dir, **options):
        raise PackageNotFoundError("APT has no package named 'debian-faq-xx'")

    monkeypatch.setattr(debian, "fetch_debian", failing)
    result = runner.invoke(app, ["fetch", "debian", "--packages", "debian-faq-xx"])
    assert result.exit_code == 2 and "debian-faq-xx" in result.output
    result = runner.invoke(app, ["fetch", "wikipedia"])
    assert result.exit_code == 2 and "only 'debian' is fetched" in result.output
