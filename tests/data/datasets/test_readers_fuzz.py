"""Fuzzing the data readers (#16): whatever the bytes, a valid result or a typed vbert error, never a traceback.

Each property is bounded (a few seconds); together they run in ``make test``.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vbert.data.article import Article
from vbert.data.corpora.files import iter_files, read_documents
from vbert.data.corpora.html_text import extract_html, html_to_text
from vbert.data.corpora.language import normalize_lang
from vbert.data.corpora.store import FORMAT, article_line, iter_corpus, read_manifest
from vbert.data.datasets import validate_dataset
from vbert.data.datasets.shards import FORMAT_VERSION
from vbert.errors import DataError, IntegrityError, VbertError
from vbert.files import sha256_bytes

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Rows that look like documents, with the id and text fields often of the right kind and sometimes not.
jsonl_rows = st.dictionaries(
    st.sampled_from(["id", "text", "title", "lang", "source", "license", "group"]) | st.text(max_size=5),
    st.text(max_size=30) | st.integers() | json_values,
    max_size=5,
)
jsonl_lines = st.one_of(
    jsonl_rows.map(lambda row: json.dumps(row)),
    st.text(max_size=60),  # anything, including half-written JSON and lone surrogate escapes
    st.sampled_from(['{"text": "a\\ud800b"}', '{"id": "\\udc80", "text": "x"}', "[" * 5000, '{"a":' * 5000]),
    st.just('{"id": ' + "9" * 5000 + ', "text": "an id too long to convert"}'),
)


def _readers(path: Path) -> None:
    documents = read_documents([path])
    ids = [doc_id for doc_id, _ in documents]
    assert len(ids) == len(set(ids)) and all(isinstance(i, str) and i for i in ids)
    assert all(text.strip() for _, text in documents)
    for article in iter_files(path):
        assert isinstance(article, Article) and isinstance(article.id, str)
        article_line(article).encode("utf-8")  # what a corpus stores: always writable


@FUZZ
@given(lines=st.lists(jsonl_lines, max_size=6))
def test_jsonl_documents(lines):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "docs.jsonl"
        path.write_text("\n".join(lines), encoding="utf-8", errors="surrogatepass")
        with contextlib.suppress(DataError):
            _readers(path)


@FUZZ
@given(content=st.binary(max_size=200), name=st.sampled_from(["a.txt", "b.md", "c.jsonl", "d.bin"]))
def test_text_and_jsonl_files_from_raw_bytes(content, name):
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "sub").mkdir()
        (Path(folder) / "sub" / name).write_bytes(content)
        with contextlib.suppress(DataError):
            _readers(Path(folder))


@FUZZ
@given(manifest=json_values | st.fixed_dictionaries({"format": st.just(FORMAT), "shards": json_values}))
def test_corpus_manifest(manifest):
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        try:
            read_manifest(folder)
            list(iter_corpus(folder))
        except (IntegrityError, FileNotFoundError):
            pass  # FileNotFoundError: a well-formed manifest naming a shard that is not there


@FUZZ
@given(shard=st.binary(max_size=300) | st.lists(jsonl_rows.map(json.dumps), max_size=4).map(
    lambda rows: "\n".join(rows).encode()), path=st.sampled_from(["en.jsonl", "../outside.jsonl", "/etc/hostname"]))  # fmt: skip
def test_corpus_shards_that_match_their_checksum(shard, path):
    with tempfile.TemporaryDirectory() as folder:
        corpus = Path(folder) / "corpus"
        corpus.mkdir()
        (corpus / "en.jsonl").write_bytes(shard)
        entry = {"path": path, "sha256": sha256_bytes(shard), "documents": 1, "lang": "en"}
        (corpus / "manifest.json").write_text(json.dumps({"format": FORMAT, "shards": [entry]}))
        try:
            articles = list(iter_corpus(corpus))
        except IntegrityError:
            return
        assert path == "en.jsonl" and all(isinstance(a, Article) for a in articles)


dataset_files = st.fixed_dictionaries(
    {
        "path": st.sampled_from(["data/train-00000.parquet", "../x", "/etc/hostname", ""])
        | st.text(max_size=10),
        "split": st.text(max_size=5),
        "rows": st.integers(-1, 3) | json_values,
        "bytes": st.integers(-1, 10) | json_values,
        "sha256": st.text(max_size=64) | json_values,
    }  # fmt: skip
)


@FUZZ
@given(
    manifest=json_values
    | st.fixed_dictionaries(
        {
            "format_version": st.just(FORMAT_VERSION),
            "kind": st.sampled_from(["n-to-1", "atomic"]) | json_values,
            "splits": st.dictionaries(st.text(max_size=5), st.fixed_dictionaries({"rows": st.integers()}))
            | json_values,
            "shards": st.lists(
                st.fixed_dictionaries({"files": st.lists(dataset_files, max_size=3)}), max_size=3
            )
            | json_values,
        }
    ),
    checksums=st.booleans(),
)
def test_dataset_manifest(manifest, checksums):
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        try:
            report = validate_dataset(folder, checksums=checksums, strict=False)
        except IntegrityError:
            return
        assert isinstance(report.problems, list) and report.kind == manifest["kind"]


@FUZZ
@given(html=st.text(max_size=300) | st.lists(st.sampled_from(
    ["<h2>", "</h2>", "<p>", "</p>", "<nav>", "<script>", "</div>", "<br/>", "&amp;", "&#xffffff;", "<!--", "x"]
), max_size=40).map("".join), split=st.sampled_from([None, "h2", "h1"]))  # fmt: skip
def test_html_extraction_never_fails(html, split):
    document = extract_html(html, split_tag=split)
    assert isinstance(document.text, str) and all(isinstance(s.text, str) for s in document.sections)
    title, text = html_to_text(html)
    assert isinstance(title, str) and isinstance(text, str)


@FUZZ
@given(code=st.text(max_size=12))
def test_language_codes(code):
    try:
        lang = normalize_lang(code)
    except DataError:
        return
    assert lang == normalize_lang(lang)


def test_errors_raised_here_are_vbert_errors():
    assert issubclass(DataError, VbertError) and issubclass(IntegrityError, VbertError)
