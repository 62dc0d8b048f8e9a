"""The ``vbert`` command line: a thin face over the library."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from vbert.cli.index import EngineOpt, RayAddressOpt, WorkersOpt, embed_with_ray

app = typer.Typer(
    name="vbert",
    help="Embed long documents by merging cached chunk embeddings (vBERT sequence merger).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

InputsArg = Annotated[
    list[Path],
    typer.Argument(help="Text files (.txt/.md), folders of them, or JSONL files with a 'text' field."),
]
OutputOpt = Annotated[
    Path, typer.Option("--output", "-o", help="Output file: .npy (plus .ids.json) or .parquet.")
]
EmbedderOpt = Annotated[
    str, typer.Option(help="'default' (offline multilingual-e5-small), 'minilm', a local folder or a HF id.")
]


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _read_documents(inputs: list[Path]) -> list[tuple[str, str]]:
    from vbert.data.corpora.files import iter_files

    documents = []
    for path in inputs:
        try:
            documents.extend(
                (a.id if a.source != "files" else a.title or a.id, a.text) for a in iter_files(path)
            )
        except (FileNotFoundError, ValueError) as err:
            _fail(str(err))
    if not documents:
        _fail("no non-empty documents found in the inputs")
    return documents


def _write_vectors(output: Path, ids: list[str], vectors: np.ndarray, extra: dict | None = None) -> None:
    from vbert.files import atomic_path, atomic_write_json

    if output.suffix == ".npy":
        with atomic_path(output) as tmp, open(tmp, "wb") as f:
            np.save(f, vectors.astype(np.float32), allow_pickle=False)
        atomic_write_json(output.with_suffix(".ids.json"), {"ids": ids, **(extra or {})})
    elif output.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        dim = vectors.shape[1]
        columns = {"id": pa.array(ids, pa.string())}
        for key, values in (extra or {}).items():
            columns[key] = pa.array(values)
        columns["embedding"] = pa.FixedSizeListArray.from_arrays(
            pa.array(vectors.astype(np.float32).ravel()), dim
        )
        with atomic_path(output) as tmp:
            pq.write_table(pa.table(columns), tmp)
    else:
        _fail(f"unsupported output {output.name}: use a .npy or .parquet file name")
    typer.echo(f"wrote {len(ids)} vectors of dimension {vectors.shape[1]} to {output}")


@app.command()
def embed(
    inputs: InputsArg,
    output: OutputOpt,
    embedder: EmbedderOpt = "default",
    chunk_tokens: Annotated[
        int | None, typer.Option(help="Content tokens per chunk (default: the window).")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Chunks per forward pass.")] = 32,
    engine: EngineOpt = "local",
    ray_address: RayAddressOpt = None,
    workers: WorkersOpt = 1,
) -> None:
    """Texts → chunk embeddings: one row per chunk, with the document id and chunk index."""
    from vbert import load_embedder

    documents = _read_documents(inputs)
    if engine == "ray":
        embed_with_ray(
            documents, output, embedder, chunk_tokens, batch_size, workers, ray_address, _write_vectors
        )
        return
    if engine != "local":
        _fail(f"unknown engine {engine!r}; choose 'local' or 'ray'")
    model = load_embedder(embedder)
    size = chunk_tokens or model.content_window
    ids, index, chunks = [], [], []
    for doc_id, text in documents:
        pieces = model.split(text, size)
        ids.extend([doc_id] * len(pieces))
        index.extend(range(len(pieces)))
        chunks.extend(pieces)
    from tqdm.auto import tqdm

    vectors = np.concatenate(
        [
            model.encode(chunks[i : i + 256], batch_size=batch_size)
            for i in tqdm(range(0, len(chunks), 256), desc="chunk batches", unit="batch")
        ]
    )
    _write_vectors(output, ids, vectors, {"chunk_index": index, "embedder": model.fingerprint})


@app.command()
def merge(
    inputs: InputsArg,
    output: OutputOpt,
    merger: Annotated[
        str, typer.Option(help="'default', 'mean', 'mean-weighted', 'truncation', or a merger folder.")
    ] = "default",
    embedder: EmbedderOpt = "default",
    chunk_tokens: Annotated[
        int | None, typer.Option(help="Content tokens per chunk (default: the window).")
    ] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Chunk cache SQLite file (default under $VBERT_HOME).")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Do not read or write the chunk cache.")
    ] = False,
) -> None:
    """Long documents → one vector each (chunk, embed with cache, merge)."""
    from vbert import LongDocumentEncoder, load_embedder, load_merger

    documents = _read_documents(inputs)
    try:
        encoder = LongDocumentEncoder(
            load_embedder(embedder),
            load_merger(merger),
            chunk_tokens=chunk_tokens,
            cache=False if no_cache else cache,
        )
        vectors = encoder.encode([text for _, text in documents], show_progress=True)
    except (FileNotFoundError, ValueError) as err:
        _fail(str(err))
    extra = {"embedder": encoder.embedder.fingerprint, "merger": encoder.merger.fingerprint}
    _write_vectors(output, [doc_id for doc_id, _ in documents], vectors, extra)


@app.command()
def info(
    embedder: EmbedderOpt = "default",
    merger: Annotated[str, typer.Option(help="Merger to describe.")] = "default",
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
        loaded = vbert.load_merger(merger)
        report["merger"] = {"name": loaded.name, "fingerprint": loaded.fingerprint}
    except Exception as err:
        report["merger"] = f"unavailable: {err}"
    typer.echo(json.dumps(report, indent=2))


@app.command("export-hub")
def export_hub(
    source: Annotated[Path, typer.Argument(help="A merger folder written by save_pretrained, or 'default'.")],
    destination: Annotated[Path, typer.Argument(help="New folder for the self-contained export.")],
) -> None:
    """Write a folder that loads with plain transformers (trust_remote_code=True) without vbert."""
    from vbert import load_merger
    from vbert.model.hub import export_hub as export

    try:
        model = load_merger(str(source))
        if not hasattr(model, "save_pretrained"):
            _fail(f"{source} is a training-free baseline; only trained mergers can be exported")
        export(model, destination)
    except (FileNotFoundError, FileExistsError) as err:
        _fail(str(err))
    typer.echo(f"exported {source} to {destination}")


@app.command()
def demo(
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for every output.")] = Path(
        "demo-output"
    ),
    merger: Annotated[str, typer.Option(help="Merger to showcase beside the baselines.")] = "default",
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
