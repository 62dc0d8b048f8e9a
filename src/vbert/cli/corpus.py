"""``vbert corpus``: fetch the offline Debian corpus and show corpus statistics.

A thin face over :mod:`vbert.data.corpora`; mount with ``app.add_typer(corpus.app, name="corpus")``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from vbert.cli.errors import fail, reported
from vbert.cli.options import command_group

app = command_group("corpus", "Fetch article corpora and show their statistics.")

CorpusDirOpt = Annotated[
    Path | None,
    typer.Option("--corpus-dir", help="Debian corpus folder (default $VBERT_HOME/corpora/debian)."),
]
LangsOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--langs", help="Languages, comma-separated or repeated (e.g. de,ko,zh-CN); 'all' for every one."
    ),
]


def _split_values(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


@app.command()
def fetch(
    source: Annotated[
        str, typer.Argument(help="The corpus to fetch; only 'debian' is fetched ahead of use.")
    ],
    langs: LangsOpt = None,
    packages: Annotated[
        list[str] | None,
        typer.Option(
            "--packages", help="Exact Debian packages instead of the default set (e.g. gimp-help-ko)."
        ),
    ] = None,
    sources: Annotated[
        list[str] | None,
        typer.Option("--sources", help="Source families (debian-handbook, manpages, gimp-help, ...)."),
    ] = None,
    corpus_dir: CorpusDirOpt = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Threads rendering man pages (default: CPU count, at most 4).")
    ] = None,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Download and convert again even if cached.")
    ] = False,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar per package.")
    ] = True,
) -> None:
    """Download Debian documentation packages (never installed), convert them to articles, write the manifest.

    Re-running is cheap: packages already extracted and converted are reused.
    """
    from tqdm.auto import tqdm

    from vbert.data.corpora.debian import fetch_debian

    if source != "debian":
        fail(
            f"cannot fetch {source!r}: only 'debian' is fetched ahead of use; 'wikipedia' streams from the "
            "Hugging Face hub when read, and 'files' reads your own folder"
        )

    def bar(items: Any, desc: str, total: int) -> Any:
        return tqdm(items, desc=desc, total=total, unit="page", leave=False, disable=not progress)

    with reported(ValueError):
        report = fetch_debian(
            corpus_dir,
            langs=_split_values(langs),
            families=_split_values(sources),
            packages=_split_values(packages),
            workers=workers or min(4, os.cpu_count() or 1),
            refresh=refresh,
            progress=bar,
            log=tqdm.write,
        )
    downloaded = sum(p.deb_bytes for p in report.packages if p.downloaded)
    typer.echo(
        f"{report.manifest['documents']} documents from {len(report.packages)} packages "
        f"({downloaded / 1e6:.1f} MB downloaded) in {report.seconds:.0f}s -> {report.corpus_dir}\n"
        f"corpus hash {report.manifest['corpus_hash']}"
    )


@app.command()
def stats(
    corpus: Annotated[
        str, typer.Argument(help="'debian', a corpus folder, or a folder/JSONL of texts.")
    ] = "debian",
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON keyed by language.")] = False,
    tokenizer: Annotated[
        Path | None,
        typer.Option(help="tokenizer.json to count tokens with (default: the embedder's tokenizer)."),
    ] = None,
    embedder: Annotated[str, typer.Option(help="Embedder whose tokenizer counts tokens.")] = "default",
    min_tokens: Annotated[
        int, typer.Option(min=1, help="Length threshold for the docs_ge_<n> column.")
    ] = 600,
    langs: LangsOpt = None,
    corpus_dir: CorpusDirOpt = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Documents, tokens and documents of at least --min-tokens tokens, per language and source."""
    from tqdm.auto import tqdm

    from vbert.data.corpora import corpus_stats, load_corpus, stored_corpus_stats
    from vbert.data.corpora.debian import default_corpus_dir
    from vbert.data.corpora.store import MANIFEST_NAME, read_manifest

    wanted = _split_values(langs)

    def bar(articles: Any) -> Any:
        return tqdm(articles, unit="doc", disable=not progress, leave=False)

    stored = (corpus_dir or default_corpus_dir()) if corpus == "debian" else Path(corpus)
    is_stored = corpus == "debian" or (stored / MANIFEST_NAME).is_file()
    with reported(FileNotFoundError, ValueError):
        if is_stored:
            read_manifest(stored)  # fail before the (slow) tokenizer load when there is no corpus
        counter = _token_counter(tokenizer, embedder)
        if is_stored:
            table = stored_corpus_stats(stored, counter, min_tokens=min_tokens, langs=wanted, progress=bar)
        else:
            articles = (a for a in load_corpus(corpus) if wanted is None or a.lang in wanted)
            table = corpus_stats(bar(articles), counter, min_tokens)
    if json_output:
        typer.echo(json.dumps(table, indent=2, ensure_ascii=False))
    else:
        typer.echo(format_stats(table, min_tokens))


def _token_counter(tokenizer: Path | None, embedder: str) -> Any:
    if tokenizer is not None:
        from vbert.data.corpora import TokenizerCounter

        try:
            return TokenizerCounter(tokenizer)
        except FileNotFoundError as err:
            fail(str(err))
        except Exception as err:  # the Rust tokenizers library raises a bare Exception on a bad file
            fail(f"cannot load the tokenizer {tokenizer}: {err}")
    try:
        from vbert.embedders import load_embedder

        return load_embedder(embedder)
    except (ImportError, OSError, ValueError, RuntimeError) as err:
        fail(
            f"cannot load the embedder {embedder!r} to count tokens ({err}); pass --tokenizer path/to/tokenizer.json"
        )


def format_stats(table: dict[str, Any], min_tokens: int = 600) -> str:
    """A plain-text table: one row per (language, source), a total per language, a summary line."""
    key = f"docs_ge_{min_tokens}"
    header = f"{'lang':<7} {'source':<20} {'documents':>9} {'tokens':>12} {f'docs>={min_tokens}':>10}"
    lines = [header, "-" * len(header)]
    for lang, row in table.items():
        for source, cell in row["sources"].items():
            lines.append(
                f"{lang:<7} {source:<20} {cell['documents']:>9,} {cell['tokens']:>12,} {cell[key]:>10,}"
            )
        if len(row["sources"]) > 1:
            lines.append(
                f"{lang:<7} {'(all)':<20} {row['documents']:>9,} {row['tokens']:>12,} {row[key]:>10,}"
            )
    total_docs = sum(r["documents"] for r in table.values())
    total_tokens = sum(r["tokens"] for r in table.values())
    lines += [
        "-" * len(header),
        f"{'total':<28} {total_docs:>9,} {total_tokens:>12,} {sum(r[key] for r in table.values()):>10,}",
    ]
    rich = [lang for lang, row in table.items() if row[key] >= 100]
    lines.append(
        f"languages with >= 100 documents of >= {min_tokens} tokens: {len(rich)} ({', '.join(rich)})"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    app()
