"""``vbert bench`` and ``vbert export-onnx``: thin commands over the benchmark suite and the ONNX export.

The lead's ``vbert/cli/main.py`` mounts them::

    app.command("bench")(bench)
    app.command("export-onnx")(export_onnx)
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated, NoReturn

import typer


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def _checkout_roots() -> list[Path]:
    """Folders that may hold a source checkout's ``benchmarks/``: the working directory and up, and
    the checkout of an editable install."""
    import vbert

    here = Path.cwd().resolve()
    return [here, *here.parents, Path(vbert.__file__).resolve().parents[2]]


def _benchmark_suite() -> ModuleType:
    """``benchmarks.suite`` from a source checkout (the suite is not part of the installed package)."""
    for root in _checkout_roots():
        if (root / "benchmarks" / "suite.py").is_file():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            return importlib.import_module("benchmarks.suite")
    _fail(
        "the benchmark suite lives in the benchmarks/ folder of a vbert source checkout, and none was found "
        "here or above; run `vbert bench` inside a checkout (or `python -m benchmarks` there)"
    )


def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes: a run of a few minutes.")] = False,
    output: Annotated[
        Path | None, typer.Option(help="Folder for report.json and report.md (default: benchmarks/results).")
    ] = None,
    sections: Annotated[
        str | None, typer.Option(help="Comma-separated subset of the sections (default: all).")
    ] = None,
    embedder: Annotated[
        str,
        typer.Option(help="'default' (multilingual-e5-small), 'tiny' (random tiny BERT) or a model folder."),
    ] = "default",
    threads: Annotated[int | None, typer.Option(help="torch threads (default: torch's choice).")] = None,
) -> None:
    """Run the performance suite: merge vs embed cost, merger efficiency, pipeline, training, memory, scaling, ONNX."""
    suite = _benchmark_suite()
    argv = ["--embedder", embedder]
    if quick:
        argv.append("--quick")
    if output is not None:
        argv += ["--output", str(output)]
    if sections:
        argv += ["--sections", sections]
    if threads is not None:
        argv += ["--threads", str(threads)]
    raise typer.Exit(code=suite.main(argv))


def export_onnx(
    source: Annotated[str, typer.Argument(help="A merger folder written by save_pretrained, or 'default'.")],
    destination: Annotated[Path, typer.Argument(help="The .onnx file to write.")],
    opset: Annotated[int, typer.Option(help="ONNX opset (17 or newer).")] = 17,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Check parity with PyTorch after the export.")
    ] = True,
) -> None:
    """Export a merger to ONNX (dynamic batch and chunk axes) for onnxruntime."""
    from vbert import load_merger
    from vbert.model import SequenceMergerModel
    from vbert.onnx_export import export_onnx as export

    try:
        model = load_merger(source)
    except (FileNotFoundError, ValueError, OSError) as err:
        _fail(str(err))
    if not isinstance(model, SequenceMergerModel):
        _fail(f"{source} is a training-free baseline; only trained mergers can be exported")
    try:
        difference = export(model, destination, opset=opset, verify=verify)
    except (ImportError, ValueError, TypeError, RuntimeError) as err:
        _fail(str(err))
    parity = "" if difference is None else f"; max abs difference from PyTorch {difference:.1e}"
    typer.echo(f"exported {source} to {destination} (opset {opset}{parity})")
