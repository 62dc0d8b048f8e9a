"""The CLI faces: `finesse leaderboard` and `vbert lab`, mounted on a throwaway Typer app."""

from __future__ import annotations

import socket

import typer
from typer.testing import CliRunner

from vbert.cli.lab import lab_command, leaderboard_command
from vbert.errors import ConfigError, DataError


def app_with(command) -> typer.Typer:
    app = typer.Typer()
    app.command()(command)
    app.command("unused")(lambda: None)  # two commands: Typer keeps the subcommand name
    return app


def test_leaderboard_command_writes_the_site(finesse_run, tampered, tmp_path):
    out = tmp_path / "site"
    key = tmp_path / "key"
    key.write_text("k" * 32)
    args = ["leaderboard-command", *map(str, finesse_run.results.values()), str(tampered), "--out", str(out)]
    result = CliRunner().invoke(
        app_with(leaderboard_command), [*args, "--key-file", str(key), "--anatomy-samples", "2"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "index.html").is_file() and len(list((out / "anatomy").glob("*.js"))) == 5
    assert "wrote 5 result(s)" in result.output and "anatomy data" in result.output
    assert (out / "index.html").resolve().as_uri() in result.output
    assert "decay-edited" in result.output  # the flagged result is warned about


def test_leaderboard_command_errors(tmp_path):
    app = app_with(leaderboard_command)
    result = CliRunner().invoke(
        app, ["leaderboard-command", str(tmp_path / "missing.json"), "--out", str(tmp_path)]
    )
    assert result.exit_code == DataError.exit_code and "does not exist" in result.output
    short_key = tmp_path / "key"
    short_key.write_text("short")
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    result = CliRunner().invoke(
        app, ["leaderboard-command", str(bad), "--out", str(tmp_path), "--key-file", str(short_key)]
    )
    assert result.exit_code == ConfigError.exit_code and "at least 16" in result.output


def test_lab_command_reports_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            app_with(lab_command), ["lab-command", "--port", str(port), "--merger", "mean"]
        )
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output


def test_lab_mergers_come_from_the_merger_registry():
    from vbert.lab import default_mergers, spec_factories
    from vbert.mergers import MERGERS, baseline_names

    assert default_mergers() == [*baseline_names(), "native"]
    _, mergers = spec_factories([], ["mean", "vbert.mergers:TruncationBaseline", "native"])
    assert set(mergers) == {"mean", "vbert.mergers:TruncationBaseline"}  # native is the lab's own
    assert mergers["vbert.mergers:TruncationBaseline"]().name == "truncation"
    help_text = " ".join(CliRunner().invoke(app_with(lab_command), ["lab-command", "--help"]).output.split())
    assert all(name in help_text for name in MERGERS.names())
