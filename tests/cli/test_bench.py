import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_vbert_bench_imports_the_suite_without_putting_the_checkout_on_sys_path(tmp_path):
    """An installed ``vbert bench`` finds the checkout's suite but must not let the checkout shadow modules."""
    checkout = Path(__file__).resolve().parents[2]
    probe = (
        "import sys; before = list(sys.path)\n"
        "from vbert.cli.bench import _benchmark_suite\n"
        "suite = _benchmark_suite()\n"
        "assert sys.path == before, set(sys.path) - set(before)\n"
        "print(suite.__file__)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=checkout / "docs",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == checkout / "benchmarks" / "suite.py"
