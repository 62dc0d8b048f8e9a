"""``vbert.cli.options``: shared command groups, and option groups declared once as dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer
from typer.testing import CliRunner

from vbert.cli.options import command_group, option_groups

runner = CliRunner()
NameOpt = Annotated[str, typer.Option(help="Who to greet.")]
TimesOpt = Annotated[int, typer.Option(min=1, help="How many times.")]


@dataclass
class Greeting:
    name: NameOpt = "world"
    times: TimesOpt = 1


def _app() -> typer.Typer:
    app = command_group("greet", "Greets.")

    @app.command()
    @option_groups
    def hello(
        loud: Annotated[bool, typer.Option("--loud", help="Shout.")] = False,
        *,
        greeting: Greeting,
        end: Annotated[str, typer.Option(help="Last word.")] = ".",
    ) -> None:
        """Say hello."""
        text = f"hello {greeting.name}{end}" * greeting.times
        typer.echo(text.upper() if loud else text)

    @app.command()
    def other() -> None:
        """Another command, so that `hello` is a sub-command."""

    return app


def test_a_group_becomes_its_options_in_place_and_comes_back_as_one_object():
    app = _app()
    assert (
        runner.invoke(app, ["hello", "--name", "vbert", "--times", "2"]).output
        == "hello vbert.hello vbert.\n"
    )
    assert runner.invoke(app, ["hello", "--loud", "--end", "!"]).output == "HELLO WORLD!\n"
    bad = runner.invoke(app, ["hello", "--times", "0"])
    assert bad.exit_code == 2 and "--times" in bad.output
    help_text = runner.invoke(app, ["hello", "--help"], env={"COLUMNS": "120"}).output
    positions = [help_text.index(option) for option in ("--loud", "--name", "--times", "--end")]
    assert positions == sorted(positions) and "Who to greet." in help_text


def test_a_bare_command_group_prints_its_help():
    result = runner.invoke(_app(), [])
    assert "Greets." in result.output and "hello" in result.output
