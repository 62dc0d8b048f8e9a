"""``vbert data``: build the training datasets (article sequences, N-to-1, atomic, query-documents) and check them.

A thin face over :mod:`vbert.data.datasets`; mount with ``app.add_typer(data.app, name="data")``.
Every build resumes where it stopped when run again, and runs unchanged under ``torchrun`` or
``accelerate launch`` (each process embeds its own shards; rank 0 writes the manifest).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer

from vbert.cli.errors import fail, reported
from vbert.cli.options import command_group, option_groups

app = command_group(
    "data", "Build training datasets from a corpus with the base embedder, and validate them."
)

OutOpt = Annotated[
    Path, typer.Option("--out", "-o", help="Dataset folder (resumed if it holds the same build).")
]
CorpusOpt = Annotated[
    str,
    typer.Option(help="'debian' (offline default), 'wikipedia', 'files' (needs --corpus-dir), or a folder."),
]
CorpusDirOpt = Annotated[
    Path | None,
    typer.Option("--corpus-dir", help="Debian corpus folder, or the folder/JSONL of a files corpus."),
]
LangsOpt = Annotated[
    str | None, typer.Option(help="Languages, comma-separated (e.g. en,ko,fr); default all.")
]
SourcesOpt = Annotated[
    str | None, typer.Option(help="Debian source families, comma-separated (default all).")
]
MaxArticlesOpt = Annotated[int | None, typer.Option(min=1, help="Use at most this many articles in total.")]
PerLangOpt = Annotated[int | None, typer.Option(min=1, help="Use at most this many articles per language.")]
EmbedderOpt = Annotated[
    str, typer.Option(help="'default' (multilingual-e5-small), 'minilm', a model folder, a hub id, or 'toy'.")
]
DeviceOpt = Annotated[
    str | None, typer.Option(help="Torch device (default: cuda:LOCAL_RANK if CUDA, else CPU).")
]
BatchOpt = Annotated[int, typer.Option(min=1, help="Texts per forward pass.")]
DtypeOpt = Annotated[str, typer.Option(help="Storage type of the vectors: float16 or float32.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the splits and of every sampled window.")]
ShardOpt = Annotated[int, typer.Option(min=1, help="Consecutive articles per shard.")]
SplitsOpt = Annotated[
    str, typer.Option(help="train,validation,test fractions by translation group; 'none' puts all in train.")
]
OverwriteOpt = Annotated[
    bool, typer.Option("--overwrite", help="Replace a folder built with other parameters.")
]
StoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Chunk-vector store (SQLite) to reuse vectors from and save new ones to; default "
        "$VBERT_HOME/chunk-cache.sqlite, shared with the evaluations.",
    ),
]
NoStoreOpt = Annotated[bool, typer.Option("--no-store", help="Embed every text; read and write no store.")]


@dataclass
class Source:
    """Where the articles come from and which embedder embeds them."""

    corpus: CorpusOpt = "debian"
    corpus_dir: CorpusDirOpt = None
    langs: LangsOpt = None
    sources: SourcesOpt = None
    max_articles: MaxArticlesOpt = None
    max_per_lang: PerLangOpt = None
    embedder: EmbedderOpt = "default"
    device: DeviceOpt = None


@dataclass
class Output:
    """How the dataset is embedded, split, sharded and stored."""

    batch_size: BatchOpt = 64
    dtype: DtypeOpt = "float16"
    seed: SeedOpt = 0
    articles_per_shard: ShardOpt = 64
    splits: SplitsOpt = "0.8,0.1,0.1"
    overwrite: OverwriteOpt = False
    store: StoreOpt = None
    no_store: NoStoreOpt = False


def _listed(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [item.strip() for item in value.split(",") if item.strip()]
    return items or None


def _corpus_factory(source: Source) -> tuple[Callable[[], Iterator[Any]], dict[str, Any]]:
    """A function that opens the corpus afresh (the atomic build reads it twice) and its description."""
    from vbert.data.corpora import load_corpus

    corpus, corpus_dir, per_lang = source.corpus, source.corpus_dir, source.max_per_lang
    wanted = _listed(source.langs)
    options: dict[str, Any] = {}
    if corpus == "debian":
        options = {"corpus_dir": corpus_dir, "langs": wanted, "sources": _listed(source.sources)}
    elif corpus == "wikipedia":
        options = {"langs": wanted or ["en"], "limit": per_lang}
    elif corpus == "files":
        if corpus_dir is None:
            fail("--corpus files needs --corpus-dir: a folder of .txt/.md files or a JSONL file")
        options = {"path": corpus_dir}
    elif wanted is not None:
        options = {"langs": wanted}

    def open_corpus() -> Iterator[Any]:
        articles: Iterable[Any] = load_corpus(corpus, **options)
        if per_lang is not None and corpus != "wikipedia":
            articles = _cap_per_language(articles, per_lang)
        return islice(articles, source.max_articles)

    description = {
        "name": corpus,
        "langs": wanted,
        "sources": _listed(source.sources),
        "max_articles": source.max_articles,
        "max_per_lang": per_lang,
    }
    return open_corpus, {k: v for k, v in description.items() if v is not None}


def _cap_per_language(articles: Iterable[Any], cap: int) -> Iterator[Any]:
    seen: dict[str, int] = {}
    for article in articles:
        if seen.get(article.lang, 0) < cap:
            seen[article.lang] = seen.get(article.lang, 0) + 1
            yield article


def _load_embedder(name: str, device: str | None) -> Any:
    if name == "toy":
        from vbert.testing.toy import ToyEmbedder

        return ToyEmbedder(dim=384, max_tokens=512)
    import torch

    from vbert.data.datasets.distributed import local_device_index
    from vbert.embedders import load_embedder

    if device is None and torch.cuda.is_available():
        device = f"cuda:{local_device_index()}"
    try:
        return load_embedder(name, **({"device": device} if device else {}))
    except (OSError, ValueError, RuntimeError) as err:
        fail(f"cannot load the embedder {name!r}: {err}")


def _options(output: Output, corpus: dict) -> Any:
    from vbert.cache import ChunkCache
    from vbert.data.datasets import CommonOptions
    from vbert.data.splits import normalize_fractions, split_of

    splits, seed = output.splits, output.seed
    rule, spec = None, "all train"
    if splits.strip().lower() != "none":
        try:
            fractions = normalize_fractions([float(x) for x in splits.split(",")])
        except ValueError as err:
            fail(f"--splits {splits!r}: {err}")
        rule = lambda article: split_of(article, seed, fractions)  # noqa: E731
        spec = f"vbert.data.splits.split_of(seed={seed}, fractions={fractions}) by translation group"
    try:
        return CommonOptions(
            articles_per_shard=output.articles_per_shard,
            batch_size=output.batch_size,
            dtype=output.dtype,
            seed=seed,
            split_rule=rule,
            split_spec=spec,
            overwrite=output.overwrite,
            corpus=corpus,
            store=None if output.no_store else ChunkCache(output.store),
        )
    except ValueError as err:
        fail(str(err))


def _prepare(source: Source, output: Output) -> tuple[Callable[[], Iterator[Any]], Any, Any]:
    """The corpus opener, the builders' CommonOptions and the loaded embedder of a build command."""
    open_corpus, description = _corpus_factory(source)
    options = _options(output, description)
    return open_corpus, options, _load_embedder(source.embedder, source.device)


def _run(build: Callable[[], Any]) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("vbert.data.datasets").setLevel(logging.INFO)
    with reported(FileNotFoundError, NotADirectoryError, ValueError, TypeError):
        result = build()
    rank = os.environ.get("RANK", "0")
    summary = f"built {len(result.built)} shard(s), reused {len(result.reused)} in {result.seconds:.0f}s"
    summary += f" ({result.embed_seconds:.0f}s embedding {result.texts_embedded} texts"
    summary += f", {result.texts_reused} reused from the store)" if result.texts_reused else ")"
    if result.manifest is not None:
        rows = ", ".join(f"{split}: {v['rows']}" for split, v in sorted(result.manifest["splits"].items()))
        typer.echo(
            f"{summary}; {result.n_articles} articles -> {rows}; manifest: {result.out_dir / 'manifest.json'}"
        )
    elif result.pending:
        typer.echo(f"[rank {rank}] {summary}; waiting for {len(result.pending)} shard(s) of other ranks")
    else:
        typer.echo(f"[rank {rank}] {summary}")


@app.command()
@option_groups
def articles(
    out: OutOpt,
    *,
    source: Source,
    chunk_tokens: Annotated[int, typer.Option(min=1, help="Content tokens per chunk.")] = 64,
    min_tokens: Annotated[
        int, typer.Option(min=0, help="Leave out articles shorter than this (they fit one base window).")
    ] = 512,
    output: Output,
) -> None:
    """One row per article: the embeddings of its consecutive CHUNK_TOKENS-token chunks."""
    from vbert.data.datasets import build_article_sequences

    open_corpus, options, model = _prepare(source, output)
    _run(
        lambda: build_article_sequences(
            open_corpus(), model, out, chunk_tokens=chunk_tokens, min_tokens=min_tokens, options=options
        )
    )


@app.command("n-to-1")
@option_groups
def n_to_one(
    out: OutOpt,
    *,
    atomic: Annotated[
        bool, typer.Option("--atomic", help="512-to-1: single-token inputs, span targets (see docs/data.md).")
    ] = False,
    max_chunks: Annotated[int, typer.Option(min=1, help="Largest window in chunks (10 for 10-to-1).")] = 10,
    chunk_tokens: Annotated[int, typer.Option(min=1, help="Content tokens per chunk.")] = 50,
    min_chunks: Annotated[int, typer.Option(min=1, help="Smallest window in chunks.")] = 2,
    max_windows_per_article: Annotated[
        int, typer.Option(min=0, help="Windows drawn per article (0 = all the chosen windows).")
    ] = 32,
    windows: Annotated[str, typer.Option(help="'tiled' (one tiling per size) or 'all' windows.")] = "tiled",
    window_tokens: Annotated[
        int | None,
        typer.Option(min=2, help="--atomic: window size in tokens (default: the embedder's window)."),
    ] = None,
    tree_depth: Annotated[int, typer.Option(min=0, help="--atomic: depth of the binary span tree.")] = 4,
    min_span: Annotated[int, typer.Option(min=2, help="--atomic: shortest span in tokens.")] = 2,
    tokens_per_shard: Annotated[
        int, typer.Option(min=1, help="--atomic: rows per token-table shard.")
    ] = 8192,
    source: Source,
    output: Output,
) -> None:
    """Distillation pairs: chunk vectors of a window -> the window text's vector (or, --atomic, tokens -> span)."""
    from vbert.data.datasets import build_atomic, build_n_to_one

    open_corpus, options, model = _prepare(source, output)
    if atomic:
        _run(
            lambda: build_atomic(
                open_corpus,
                model,
                out,
                window_tokens=window_tokens,
                tree_depth=tree_depth,
                min_span=min_span,
                tokens_per_shard=tokens_per_shard,
                options=options,
            )
        )
    else:
        _run(
            lambda: build_n_to_one(
                open_corpus(),
                model,
                out,
                max_chunks=max_chunks,
                chunk_tokens=chunk_tokens,
                min_chunks=min_chunks,
                max_windows_per_article=max_windows_per_article,
                windows=windows,
                options=options,
            )
        )


@app.command("query-documents")
@option_groups
def query_documents(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Parquet file to write (or a folder for query-documents.parquet)."),
    ],
    *,
    source: Source,
    split: Annotated[str, typer.Option(help="Split the documents come from ('all': every split).")] = "train",
    split_seed: Annotated[int, typer.Option(help="Seed of the document split (as `vbert evaluate`).")] = 0,
    exclude: Annotated[
        Path | None, typer.Option(help="File of document ids never to take, one per line ('#' comments).")
    ] = None,
    exclude_distractors_of: Annotated[
        str | None,
        typer.Option(
            help="Also leave out the distractors of `vbert evaluate retrieval --size SIZE`'s deep tasks."
        ),
    ] = None,
    min_tokens: Annotated[int, typer.Option(min=0, help="Shortest document in tokens.")] = 512,
    max_tokens: Annotated[int, typer.Option(min=1, help="Longest document in tokens.")] = 8000,
    max_documents: Annotated[
        int | None, typer.Option(min=2, help="Take at most this many documents.")
    ] = None,
    queries_per_document: Annotated[int, typer.Option(min=1, help="Deep paragraphs asked per document.")] = 4,
    cross_lingual: Annotated[
        bool, typer.Option(help="Also ask each document with paragraphs of its translation (pivot language).")
    ] = True,
    seed: SeedOpt = 0,
    batch_size: BatchOpt = 64,
    dtype: DtypeOpt = "float16",
    store: StoreOpt = None,
    no_store: NoStoreOpt = False,
) -> None:
    """Long documents with the vectors of their deep paragraphs as queries (query-document training data).

    Chunk vectors come from the chunk-vector store when it has them (as `vbert evaluate` stored them);
    queries are chosen as the deep-paragraph evaluation chooses its own. Languages: --langs, else all.
    """
    from vbert.cache import ChunkCache
    from vbert.data.query_documents import (
        QueryDocumentPlan,
        build_query_documents,
        evaluation_distractors,
        write_query_documents,
    )
    from vbert.data.splits import filter_split

    path = out if out.suffix == ".parquet" else out / "query-documents.parquet"
    with reported(FileNotFoundError, NotADirectoryError, ValueError):
        excluded: set[str] = set()
        if exclude is not None:
            lines = exclude.read_text(encoding="utf-8").splitlines()
            excluded = {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}
        open_corpus, description = _corpus_factory(source)
        everything = list(open_corpus())
        embedder = _load_embedder(source.embedder, source.device)
        if exclude_distractors_of is not None:
            from vbert.evaluation.suite import deep_plan_for

            distractors = evaluation_distractors(
                everything, embedder, deep_plan_for(exclude_distractors_of, seed), split_seed=split_seed
            )
            excluded |= distractors
        articles = everything if split == "all" else list(filter_split(everything, split, seed=split_seed))
        langs = _listed(source.langs) or sorted({a.lang for a in articles})
        plan = QueryDocumentPlan(
            langs=tuple(langs),
            min_tokens=min_tokens,
            max_tokens=max_tokens,
            max_documents=max_documents,
            queries_per_document=queries_per_document,
            cross_lingual=cross_lingual,
            seed=seed,
        )
        vectors = None if no_store else ChunkCache(store)
        build = build_query_documents(articles, embedder, vectors, plan, excluded, batch_size)
        sidecar = write_query_documents(
            build.rows,
            path,
            plan,
            excluded,
            dtype,
            embedder={"name": embedder.name, "fingerprint": embedder.fingerprint, "dim": int(embedder.dim)},
            corpus=description,
            split=split,
            split_seed=split_seed,
            excluded_distractors_of=exclude_distractors_of,
            left_out=build.excluded,
            chunks_embedded=build.chunks_embedded,
            queries_embedded=build.queries_embedded,
        )
    typer.echo(
        f"{sidecar['rows']} documents, {sidecar['queries']} queries {sidecar['queries_by_task']}, "
        f"{build.excluded} excluded documents left out; embedded {build.chunks_embedded} chunks and "
        f"{build.queries_embedded} queries (the rest from the store); wrote {path} (sha256 {sidecar['sha256'][:16]})"
    )


@app.command()
def validate(
    folder: Annotated[Path, typer.Argument(help="A dataset folder written by `vbert data`.")],
    checksums: Annotated[
        bool, typer.Option("--checksums/--sizes-only", help="Verify sha256 of every file (default) or sizes.")
    ] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a dataset folder against its manifest; exit 1 when a file is missing, truncated or corrupted."""
    from vbert.data.datasets import validate_dataset

    with reported():
        report = validate_dataset(folder, checksums=checksums, strict=False)
    summary = {
        "path": str(report.path),
        "kind": report.kind,
        "rows": report.rows,
        "files": report.files,
        "bytes": report.bytes,
        "embedder": report.manifest["embedder"],
        "params": report.manifest["params"],
        "corpus_sha256": report.manifest["corpus"]["sha256"],
        "problems": report.problems,
    }
    if json_output:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
    else:
        rows = ", ".join(f"{split} {n}" for split, n in sorted(report.rows.items()))
        typer.echo(f"{report.kind} dataset, {report.files} files ({report.bytes / 1e6:.1f} MB), rows: {rows}")
        typer.echo(
            f"embedder {report.manifest['embedder']['name']} ({report.manifest['embedder']['fingerprint']})"
        )
        for problem in report.problems:
            typer.secho(f"problem: {problem}", fg=typer.colors.RED, err=True)
        if report.ok:
            typer.echo("ok: every file matches the manifest")
    if not report.ok:
        raise typer.Exit(code=1)


if __name__ == "__main__":
    app()
