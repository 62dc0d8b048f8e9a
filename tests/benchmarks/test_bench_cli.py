import json

import torch
import typer
from typer.testing import CliRunner

from vbert.cli.bench import bench


def test_vbert_bench_runs_the_suite_and_writes_the_report(tmp_path):
    app = typer.Typer()
    app.command("bench")(bench)
    app.command("unused")(lambda: None)  # with two commands typer keeps the sub-command name
    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(
            app,
            [
                "bench",
                "--quick",
                "--embedder",
                "tiny",
                "--sections",
                "scaling",
                "--output",
                str(tmp_path),
                "--threads",
                "1",
            ],
        )
    finally:
        torch.set_num_threads(threads)  # --threads sets it for the whole process
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["sections"]) == ["scaling"]
    assert report["machine"]["torch_threads"] == 1
    assert "## 6. Scaling" in (tmp_path / "report.md").read_text()


def test_vbert_bench_rejects_unknown_sections(tmp_path):
    app = typer.Typer()
    app.command("bench")(bench)
    app.command("unused")(lambda: None)
    result = CliRunner().invoke(app, ["bench", "--sections", "nope", "--output", str(tmp_path)])
    assert result.exit_code != 0
    assert not (tmp_path / "report.json").exists()
