import json

from typer.testing import CliRunner

from tests.fixtures.index_corpus import make_document, write_corpus
from vbert.cli.main import app
from vbert.index import Index

runner = CliRunner()


def index_json(corpus, folder, *extra):
    result = runner.invoke(app, ["index", str(corpus), "--index", str(folder), "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_index_edit_reindex_search(tmp_path, tiny_model_dir):
    corpus = write_corpus(tmp_path / "docs", documents=3)
    folder = tmp_path / "idx"
    first = index_json(
        corpus, folder, "--embedder", str(tiny_model_dir), "--merger", "mean", "--chunk-tokens", "64"
    )
    assert (first["added"], first["updated"], first["unchanged"], first["removed"]) == (4, 0, 0, 0)
    assert first["chunks_embedded"] > 10 and first["documents"] == 4

    (corpus / "doc1.md").write_text(make_document(1).replace(".", " edited.", 1))
    (corpus / "doc0.md").unlink()
    second = index_json(corpus, folder)  # embedder, merger and chunking come from the index
    assert (second["added"], second["updated"], second["unchanged"], second["removed"]) == (0, 1, 2, 1)
    assert 1 <= second["chunks_embedded"] <= 2

    # The tiny model is random, so the query is one chunk's exact text: max-sim must find it.
    with Index(folder) as index:
        chunk = index.chunking(make_document(2))[3]
    args = ["search", chunk.text, "--index", str(folder), "-k", "2", "--json", "--rerank", "maxsim"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["hits"]
    assert len(hits) == 2 and hits[0]["id"] == "doc2.md" and hits[0]["chunk_score"] > 0.999
    assert (hits[0]["chunk_index"], hits[0]["start"], hits[0]["end"]) == (3, chunk.start, chunk.end)

    text = runner.invoke(app, ["search", chunk.text, "--index", str(folder), "--rerank", "maxsim"])
    assert text.exit_code == 0 and "1. doc2.md" in text.stdout and "chunk 4/" in text.stdout
    plain = runner.invoke(app, ["search", "hello world", "--index", str(folder), "-k", "3", "--json"])
    assert len(json.loads(plain.stdout)["hits"]) == 3


def test_cli_errors_are_one_line(tmp_path, tiny_model_dir):
    result = runner.invoke(app, ["search", "x", "--index", str(tmp_path / "none")])
    assert result.exit_code == 2 and "is not an index folder" in result.output
    result = runner.invoke(app, ["index", str(tmp_path / "missing"), "--index", str(tmp_path / "idx")])
    assert result.exit_code == 2 and "does not exist" in result.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "fine"}\nnot json\n')
    args = ["index", str(bad), "--index", str(tmp_path / "idx"), "--embedder", str(tiny_model_dir)]
    result = runner.invoke(app, [*args, "--merger", "mean"])
    assert result.exit_code == 3 and "not valid JSON" in result.output
