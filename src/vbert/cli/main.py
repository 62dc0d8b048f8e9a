"""The ``vbert`` command line: a thin face over the library."""

from __future__ import annotations

import json
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from vbert.cli.errors import fail, reported
from vbert.cli.index import EngineOpt, RayAddressOpt, WorkersOpt, embed_with_ray
from vbert.cli.mergers import load_checked_merger, merger_help
from vbert.cli.options import CacheOpt, NoCacheOpt, command_group

app = command_group(
    "vbert", "Embed long documents by merging cached chunk embeddings (vBERT sequence merger)."
)

InputsArg = Annotated[
    list[Path],
    typer.Argument(
        help="Text files (.txt/.md), folders of them, or JSONL files with a 'text' field. Ids: the path "
        "relative to the folder given (the file name for a file), or the JSONL row's string or integer 'id'."
    ),
]
OutputOpt = Annotated[
    Path, typer.Option("--output", "-o", help="Output file: .npy (plus .ids.json) or .parquet.")
]
EmbedderOpt = Annotated[
    str, typer.Option(help="'default' (offline multilingual-e5-small), 'minilm', a local folder or a HF id.")
]


ChunkTokensOpt = Annotated[
    int | None, typer.Option(help="Content tokens per chunk, at least 1 (default: the window).")
]


def _read_documents(inputs: list[Path]) -> list[tuple[str, str]]:
    from vbert.data.corpora.files import read_documents

    with reported(FileNotFoundError):
        documents = read_documents(inputs)
    if not documents:
        fail("no non-empty documents found in the inputs")
    return documents


def _iter_documents(inputs: list[Path]) -> Iterator[tuple[str, str]]:
    """The documents read lazily (``vbert embed`` / ``vbert merge`` stream them in bounded batches)."""
    from vbert.data.corpora.files import iter_documents

    with reported(FileNotFoundError):
        for path in inputs:
            if not path.exists():
                raise FileNotFoundError(f"corpus path {path} does not exist")
    return iter_documents(inputs)


def _check_options(output: Path, chunk_tokens: int | None) -> None:
    """Everything that can be checked before any document is read or embedded."""
    from vbert.data.vectors import check_output

    if chunk_tokens is not None and chunk_tokens < 1:
        fail(f"--chunk-tokens must be at least 1 (got {chunk_tokens})")
    with reported():
        check_output(output)


def _write_vectors(output: Path, ids: list[str], vectors: np.ndarray, extra: dict) -> None:
    from vbert.data.vectors import write_vectors

    with reported():
        write_vectors(output, ids, vectors, extra)
    typer.echo(f"wrote {len(ids)} vectors of dimension {vectors.shape[1]} to {output}")


@app.command()
def embed(
    inputs: InputsArg,
    output: OutputOpt,
    embedder: EmbedderOpt = "default",
    chunk_tokens: ChunkTokensOpt = None,
    batch_size: Annotated[int, typer.Option(help="Chunks per forward pass.")] = 32,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = 1,
) -> None:
    """Texts → chunk embeddings: one row per chunk, with the document id and chunk index."""
    from vbert import load_embedder

    if engine not in ("local", "ray"):
        fail(f"unknown engine {engine!r}; choose 'local' or 'ray'")
    _check_options(output, chunk_tokens)
    if engine == "ray":
        embed_with_ray(
            _read_documents(inputs),
            output,
            embedder,
            chunk_tokens,
            batch_size,
            workers,
            ray_address,
            _write_vectors,
        )
        return
    documents = _iter_documents(inputs)
    with reported(OSError, ValueError):
        model = load_embedder(embedder)
    size = chunk_tokens or model.content_window
    if size > model.content_window:
        fail(f"--chunk-tokens {size} is more than the embedder's content window ({model.content_window})")
    from vbert.data.vector_stream import embed_to_file, input_signature

    job = {
        "command": "embed",
        "inputs": input_signature(inputs),
        "embedder": model.fingerprint,
        "chunk": size,
    }
    with reported(OSError, ValueError):
        rows = embed_to_file(model, documents, output, job, size, batch_size=batch_size, show_progress=True)
    typer.echo(f"wrote {rows} vectors of dimension {model.dim} to {output}")


@app.command()
def merge(
    inputs: InputsArg,
    output: OutputOpt,
    merger: Annotated[str, typer.Option(help=merger_help())] = "default",
    embedder: EmbedderOpt = "default",
    chunk_tokens: ChunkTokensOpt = None,
    cache: CacheOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Long documents → one vector each (chunk, embed with cache, merge)."""
    from vbert import LongDocumentEncoder, load_embedder

    _check_options(output, chunk_tokens)
    with reported():
        chosen_merger = load_checked_merger(merger)
    from vbert.data.vector_stream import input_signature, merge_to_file

    documents = _iter_documents(inputs)
    with reported(OSError, ValueError):
        encoder = LongDocumentEncoder(
            load_embedder(embedder),
            chosen_merger,
            chunk_tokens=chunk_tokens,
            cache=False if no_cache else cache,
        )
        job = {
            "command": "merge",
            "inputs": input_signature(inputs),
            "embedder": encoder.embedder.fingerprint,
            "merger": encoder.merger.fingerprint,
            "chunk": encoder.chunk_tokens,
        }
        rows = merge_to_file(encoder, documents, output, job, show_progress=True)
    typer.echo(f"wrote {rows} vectors of dimension {encoder.embedder.dim} to {output}")


@app.command()
def info(
    embedder: EmbedderOpt = "default",
    merger: Annotated[str, typer.Option(help=merger_help("Merger to describe"))] = "default",
) -> None:
    """Versions, device, embedder and merger fingerprints, cache location."""
    import torch
    import transformers

    import vbert
    from vbert.cache import default_cache_path

    report: dict[str, object] = {
        "vbert": vbert.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": "cuda: " + torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "cpu": platform.processor() or platform.machine(),
        "cache": str(default_cache_path()),
    }
    try:
        model = vbert.load_embedder(embedder)
        report["embedder"] = {"name": model.name, "dim": model.dim, "fingerprint": model.fingerprint}
    except Exception as err:  # info reports what it cannot load instead of failing
        report["embedder"] = f"unavailable: {err}"
    try:
        loaded = load_checked_merger(merger)
        report["merger"] = {"name": loaded.name, "fingerprint": loaded.fingerprint}
    except Exception as err:
        report["merger"] = f"unavailable: {err}"
    typer.echo(json.dumps(report, indent=2))


@app.command("export-hub")
def export_hub(
    source: Annotated[str, typer.Argument(help="A merger folder written by save_pretrained, or 'default'.")],
    destination: Annotated[Path, typer.Argument(help="New folder for the self-contained export.")],
) -> None:
    """Write a folder that loads with plain transformers (trust_remote_code=True) without vbert."""
    from vbert.model.hub import export_hub as export

    if destination.exists() and (not destination.is_dir() or any(destination.iterdir())):
        kind = "folder is not empty" if destination.is_dir() else "is an existing file"
        fail(f"{destination} {kind}; choose a new folder or remove it first")
    with reported():
        model = load_checked_merger(source)
    if not hasattr(model, "save_pretrained"):
        fail(f"{source} is a training-free baseline; only trained mergers can be exported")
    with reported(FileExistsError, OSError):
        export(model, destination)
    typer.echo(f"exported {source} to {destination}")


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for every output.")] = Path(
        "demo-output"
    ),
    merger: Annotated[
        str, typer.Option(help=merger_help("Merger to showcase beside the baselines"))
    ] = "default",
    quick: Annotated[bool, typer.Option(help="Fewer probes and tasks, for a first look.")] = False,
) -> None:
    """The main job, offline: corpus, long documents, Finesse, retrieval, leaderboard."""
    from vbert.demo import run_demo

    run_demo(output, merger=merger, quick=quick)


from vbert.cli import corpus as _corpus  # noqa: E402  (sub-apps are mounted after the commands above)
from vbert.cli import data as _data  # noqa: E402
from vbert.cli import evaluate as _evaluate  # noqa: E402
from vbert.cli import finesse as _finesse  # noqa: E402
from vbert.cli.bench import bench, export_onnx  # noqa: E402
from vbert.cli.index import index_command, search_command  # noqa: E402
from vbert.cli.integrations import export_st  # noqa: E402
from vbert.cli.lab import lab_command  # noqa: E402
from vbert.cli.serve import serve_command  # noqa: E402
from vbert.cli.train import train_command  # noqa: E402

app.add_typer(_finesse.app, name="finesse", help="The Finesse benchmark (also the 'finesse' command).")
app.add_typer(_evaluate.app, name="evaluate")
app.add_typer(_corpus.app, name="corpus")
app.add_typer(_data.app, name="data")
app.command("lab")(lab_command)
app.command("train")(train_command)
app.command("bench")(bench)
app.command("export-onnx")(export_onnx)
app.command("serve")(serve_command)
app.command("export-st")(export_st)
app.command("index")(index_command)
app.command("search")(search_command)


def main() -> None:
    app()
