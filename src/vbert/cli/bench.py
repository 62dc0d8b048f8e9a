"""``vbert bench`` and ``vbert export-onnx``: thin commands over the benchmark suite and the ONNX export.

The lead's ``vbert/cli/main.py`` mounts them::

    app.command("bench")(bench)
    app.command("export-onnx")(export_onnx)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

import typer

from vbert.cli.errors import fail, reported
from vbert.cli.mergers import load_checked_merger


def _checkout_roots() -> list[Path]:
    """Folders that may hold a source checkout's ``benchmarks/``: the working directory and up, and
    the checkout of an editable install."""
    import vbert

    here = Path.cwd().resolve()
    return [here, *here.parents, Path(vbert.__file__).resolve().parents[2]]


def _benchmark_suite() -> ModuleType:
    """``benchmarks.suite`` from a source checkout (the suite is not part of the installed package).

    The checkout's ``benchmarks`` package is imported from its folder without adding the checkout
    to ``sys.path``, so nothing else in the checkout can shadow an installed module.
    """
    for root in _checkout_roots():
        if (root / "benchmarks" / "suite.py").is_file():
            _import_package(root / "benchmarks")
            return importlib.import_module("benchmarks.suite")
    fail(
        "the benchmark suite lives in the benchmarks/ folder of a vbert source checkout, and none was found "
        "here or above; run `vbert bench` inside a checkout (or `python -m benchmarks` there)"
    )


def _import_package(folder: Path) -> None:
    loaded = sys.modules.get(folder.name)
    if loaded is not None:
        if Path(loaded.__file__ or "").resolve().parent != folder.resolve():
            fail(f"another '{folder.name}' package is already imported ({loaded.__file__})")
        return
    spec = importlib.util.spec_from_file_location(
        folder.name, folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None  # a file location always has a loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[folder.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[folder.name]
        raise


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
    from vbert.model import SequenceMergerModel
    from vbert.onnx_export import export_onnx as export

    with reported():
        model = load_checked_merger(source)
    if not isinstance(model, SequenceMergerModel):
        fail(f"{source} is a training-free baseline; only trained mergers can be exported")
    with reported(ImportError, ValueError, TypeError, RuntimeError):
        difference = export(model, destination, opset=opset, verify=verify)
    parity = "" if difference is None else f"; max abs difference from PyTorch {difference:.1e}"
    typer.echo(f"exported {source} to {destination} (opset {opset}{parity})")
