"""The wikipedia corpus, run on a local Parquet file with the schema of wikimedia/wikipedia."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vbert.data.corpora import load_corpus
from vbert.data.corpora.wikipedia import LICENSE, iter_wikipedia


@pytest.fixture
def wiki_parquet(tmp_path: Path) -> Path:
    table = pa.table(
        {
            "id": ["5", "9", "12"],
            "url": [f"https://ko.wikipedia.org/wiki?curid={i}" for i in (5, 9, 12)],
            "title": ["지미 카터", "빈 문서", "수학"],
            "text": [
                "제임스 얼 카터 주니어는 미국의 제39대 대통령이다.\n\n생애",
                "   ",
                "수학은 수, 양, 구조를 다루는 학문이다.",
            ],
        }
    )
    path = tmp_path / "train-00000-of-00001.parquet"
    pq.write_table(table, path)
    return path


def test_local_parquet_rows_become_articles(wiki_parquet: Path) -> None:
    articles = list(iter_wikipedia("ko", data_files=wiki_parquet))
    assert [a.id for a in articles] == ["wikipedia:ko:5", "wikipedia:ko:12"]  # empty text skipped
    first = articles[0]
    assert first.lang == "ko" and first.title == "지미 카터" and first.source == "wikipedia"
    assert first.license == LICENSE and first.group == ""
    assert first.text.startswith("제임스 얼 카터")
    assert [a.id for a in load_corpus("wikipedia", langs="ko", data_files=[wiki_parquet], limit=1)] == [
        "wikipedia:ko:5"
    ]


def test_data_files_errors(wiki_parquet: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        list(iter_wikipedia("ko", data_files=tmp_path / "nope.parquet"))
    with pytest.raises(ValueError, match="exactly one language"):
        list(iter_wikipedia(["ko", "en"], data_files=wiki_parquet))
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"id": ["1"], "body": ["x"]}), wrong)
    with pytest.raises(ValueError, match=r"missing \['title', 'text'\]"):
        list(iter_wikipedia("en", data_files=wrong))


def test_unreachable_hub_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import datasets
    import huggingface_hub

    # offline mode is read when the libraries are imported, so set their switches directly
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf")
    with pytest.raises(
        RuntimeError, match=r"could not open wikimedia/wikipedia config '20231101.ko'.*fetch debian"
    ):
        next(iter_wikipedia("ko"))
