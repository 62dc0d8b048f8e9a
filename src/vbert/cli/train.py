"""``vbert train``: run a training recipe (a thin face over :func:`vbert.train.train`).

Mount with ``app.command("train")(train_command)``; also runnable on its own, which is how
``accelerate launch`` starts it on several processes::

    accelerate launch --num_processes 2 -m vbert.cli.train --recipe recipes/tiny.yaml --output runs/tiny
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from vbert.cli.errors import fail, reported


def train_command(
    recipe: Annotated[Path, typer.Option("--recipe", "-r", help="Recipe YAML file (see recipes/).")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Run folder: checkpoints, metrics, final model.")
    ],
    resume: Annotated[
        bool, typer.Option("--resume", help="Require an existing run in --output and continue it.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Discard an existing run in --output and start again.")
    ] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Train a merger with a recipe of stages. Re-running the same command continues an interrupted run."""
    from vbert.train import TrainingInterrupted, load_recipe, train

    if resume and overwrite:
        fail("--resume and --overwrite contradict each other; choose one")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with reported(FileNotFoundError, ValueError):
        try:
            final = train(
                load_recipe(recipe),
                output,
                resume=resume,
                overwrite=overwrite,
                recipe_text=recipe.read_text(encoding="utf-8"),
                progress=progress,
            )
        except TrainingInterrupted as interrupted:  # not a failure: the same command continues
            typer.secho(str(interrupted), fg=typer.colors.YELLOW, err=True)
            raise typer.Exit(code=interrupted.exit_code) from None
    if os.environ.get("RANK", "0") == "0":  # one line, not one per process
        typer.echo(f"final model: {final}")


app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
app.command()(train_command)

if __name__ == "__main__":
    app()
