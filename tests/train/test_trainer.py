"""The trainer end to end: stages, outputs, model card, run-folder rules, resume after kill -9 / Ctrl-C, 2 processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from vbert.cli.train import app
from vbert.errors import ConfigError, ResourceError
from vbert.files import normal_dir_mode, normal_file_mode
from vbert.model import SequenceMergerModel
from vbert.train import checkpoint as ckpt
from vbert.train.recipe import parse_recipe
from vbert.train.run_folder import RunFolderError
from vbert.train.signals import TrainingInterrupted
from vbert.train.trainer import train

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "recipes" / "tiny.yaml"
VOLATILE = {"time", "samples_per_s"}


def small_recipe(name: str = "small", stages: str | None = None, extra: str = "") -> str:
    stages = stages or (
        "  - {name: pre, objective: vbert, data: 'synthetic:articles?n=32&dim=16&max_len=12&seed=1', "
        "ppe_dim: 8, lr: 1.0e-3, batch_size: 8, steps: 6}\n"
        "  - {name: fit, objective: distill, data: 'synthetic:pairs?n=32&dim=16&max_len=10&seed=2', "
        "ppe_dim: 4, lr: 1.0e-3, batch_size: 8, epochs: 1, grad_accum: 2}\n"
    )
    return (
        f"name: {name}\nseed: 3\n"
        "model: {d_model: 16, num_layers: 1, num_heads: 2, ffn_dim: 32, ppe_dim: 4, dropout: 0.1}\n"
        "training: {checkpoint_every: 2, log_every: 1, deterministic: true}\n"
        f"{extra}stages:\n{stages}"
    )


def records(run: Path, event: str | None = None) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    out = [json.loads(line) for line in lines if line.strip()]
    return [r for r in out if event is None or r["event"] == event]


def stable(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


# --- in-process -------------------------------------------------------------------------------


def test_tiny_recipe_through_the_cli(tmp_path):
    """`vbert train --recipe recipes/tiny.yaml` runs all three stages offline on CPU."""
    output = tmp_path / "run"
    cpu_started = time.process_time()  # CPU time: wall time on a shared 2-core machine says little
    result = CliRunner().invoke(app, ["--recipe", str(TINY), "--output", str(output), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert time.process_time() - cpu_started < 60

    model_dir = output / "model"
    merger = SequenceMergerModel.from_pretrained(model_dir)
    assert merger.config.ppe_dim == 4 and merger.config.d_model == 32
    assert sorted(p.name for p in (output / "stages").iterdir()) == ["01-vbert", "02-overload", "03-refine"]
    assert (output / "stages" / "01-vbert" / "pretraining_heads.safetensors").is_file()
    assert SequenceMergerModel.from_pretrained(output / "stages" / "01-vbert").config.ppe_dim == 16
    assert (output / "recipe.yaml").read_text() == TINY.read_text()

    train_rows = records(output, "train")
    assert {r["stage"] for r in train_rows} == {"vbert", "overload", "refine"}
    first = train_rows[0]
    assert {
        "loss",
        "vmlm",
        "vnsp",
        "vnsp_acc",
        "cls_std",
        "lr",
        "samples_per_s",
        "grad_norm",
        "epoch",
    } <= set(first)
    assert {"loss", "distill", "train_cos"} <= set(train_rows[-1])
    evals = records(output, "eval")
    assert [r["stage"] for r in evals] == ["vbert", "overload", "refine"]
    assert {"distill_cos", "distill_cos_mean_pool", "finesse_overall", "finesse_overall_mean_pool"} <= set(
        evals[-1]
    )

    card = (model_dir / "README.md").read_text()
    for needle in (
        "recipe `tiny`",
        "| 1 | vbert | vbert |",
        "overload",
        "refine",
        "distill_cos",
        "mean pooling",
        "## Hardware",
        "num_processes: 1",
        "```yaml",
        "synthetic:articles",
    ):
        assert needle in card, needle
    stamp = (model_dir / "model.safetensors").stat().st_mtime_ns
    again = CliRunner().invoke(app, ["--recipe", str(TINY), "--output", str(output), "--no-progress"])
    assert again.exit_code == 0, again.output
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == stamp, "a finished run is left as it is"


def test_training_errors_are_vbert_errors():
    assert issubclass(RunFolderError, ConfigError)
    interrupted = TrainingInterrupted(Path("runs/x/checkpoints/stage00-step00000002"))
    assert isinstance(interrupted, ResourceError) and interrupted.exit_code == 130


def test_run_folder_rules(tmp_path):
    output = tmp_path / "run"
    recipe = parse_recipe(small_recipe())
    with pytest.raises(RunFolderError, match="no run to resume"):
        train(recipe, output, resume=True, progress=False)
    train(recipe, output, progress=False)
    other = parse_recipe(small_recipe(name="other"))
    with pytest.raises(RunFolderError, match="holds a run of another recipe"):
        train(other, output, progress=False)
    train(other, output, overwrite=True, progress=False)
    assert json.loads((output / "run.json").read_text())["recipe_name"] == "other"

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match=r"holds other files \(notes.txt\)"):
        train(recipe, foreign, progress=False)

    result = CliRunner().invoke(app, ["--recipe", str(tmp_path / "missing.yaml"), "--output", str(output)])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_steps_epochs_gradient_accumulation_and_file_modes(tmp_path):
    output = tmp_path / "run"
    train(parse_recipe(small_recipe()), output, progress=False)
    state = ckpt.read_json(ckpt.latest_checkpoint(output) / ckpt.STATE_FILE)
    # Stage 2: 32 pairs in batches of 8 = 4 micro-batches per epoch, 2 per step -> 2 steps, position 4.
    assert (state["stage_index"], state["step"], state["position"], state["stage_done"]) == (1, 2, 4, True)
    summaries = {s["name"]: s for s in state["stages"]}
    assert summaries["pre"]["steps"] == 6 and summaries["fit"]["steps"] == 2
    assert summaries["fit"]["samples"] == 32 and summaries["fit"]["epochs"] == 1.0
    steps = [r["step"] for r in records(output, "train") if r["stage"] == "fit"]
    assert steps == [1, 2]

    # save_pretrained writes weights 0600; everything the run folder holds must be 0644 / 0755.
    weights = list(output.rglob("model.safetensors"))
    assert {p.parent.name for p in weights} >= {"model", "01-pre", "02-fit"}
    assert any(ckpt.CHECKPOINTS_DIR in p.parts for p in weights)
    for path in [output, *output.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (normal_dir_mode() if path.is_dir() else normal_file_mode()), (path, oct(mode))


def test_random_batching_stage_trains_and_resumes_mid_epoch(tmp_path):
    """40 pairs in batches of 8: 5 micro-batches per epoch, so the step-4 checkpoint is mid-epoch."""
    stage = (
        "  - {name: fit, objective: distill, data: 'synthetic:pairs?n=40&dim=16&min_len=2&max_len=24&seed=2', "
        "lr: 1.0e-3, batch_size: 8, steps: 6, batching: random, distill: {contrastive_weight: 1.0}}\n"
    )
    recipe = parse_recipe(small_recipe("random", stage))
    assert recipe.stages[0].batching == "random"
    reference = tmp_path / "reference"
    train(recipe, reference, progress=False)

    resumed = tmp_path / "resumed"
    shutil.copytree(reference, resumed)
    shutil.rmtree(resumed / "model")
    shutil.rmtree(resumed / "stages")
    shutil.rmtree(resumed / ckpt.CHECKPOINTS_DIR / ckpt.checkpoint_name(0, 6))
    (resumed / ckpt.CHECKPOINTS_DIR / ckpt.LATEST_FILE).write_text(ckpt.checkpoint_name(0, 4) + "\n")
    train(recipe, resumed, resume=True, progress=False)
    assert_same_weights(resumed / "model", reference / "model")
    assert stable(records(resumed)) == stable(records(reference))

    bucketed = tmp_path / "bucketed"
    recipe = parse_recipe(small_recipe("bucketed", stage.replace(", batching: random", "")))
    train(recipe, bucketed, progress=False)
    a, b = weights(bucketed / "model"), weights(reference / "model")
    assert any(not torch.equal(a[key], b[key]) for key in a), "the stage's batching must reach the batch plan"


def test_training_on_built_dataset_folders(tmp_path):
    """Dataset folders written by vbert.data.datasets (manifest, splits) feed the stages and validation."""
    from vbert.data.datasets import CommonOptions, build_article_sequences, build_n_to_one
    from vbert.testing.toy import ToyEmbedder, toy_articles

    embedder = ToyEmbedder(dim=16, max_tokens=64)
    articles = toy_articles(24, seed=0, max_words=150)
    options = CommonOptions(
        split_rule=lambda a: "validation" if int(a.id.rsplit(":", 1)[-1]) % 4 == 0 else "train",
        split_spec="every 4th article in validation",
    )
    build_article_sequences(
        articles, embedder, tmp_path / "articles", chunk_tokens=8, min_tokens=0, options=options
    )
    build_n_to_one(articles, embedder, tmp_path / "n2o", max_chunks=5, chunk_tokens=8, options=options)
    stages = (
        f"  - {{name: pre, objective: vbert, data: '{tmp_path / 'articles'}', ppe_dim: 8, lr: 1.0e-3, "
        "batch_size: 8, steps: 3, max_length: 16}\n"
        f"  - {{name: fit, objective: distill, data: '{tmp_path / 'n2o'}', lr: 1.0e-3, batch_size: 16, steps: 3}}\n"
    )
    validation = (
        f"validation: {{pairs: '{tmp_path / 'n2o'}', probes: '{tmp_path / 'articles'}', "
        "probe_lengths: [3, 4], probe_samples: 2}\n"
    )
    output = tmp_path / "run"
    train(parse_recipe(small_recipe(stages=stages, extra=validation)), output, progress=False)
    card = (output / "model" / "README.md").read_text()
    assert f"`{embedder.fingerprint}`" in card, "the embedder fingerprint comes from the dataset manifest"
    config = json.loads((output / "model" / "config.json").read_text())
    assert config["embedder_fingerprint"] == embedder.fingerprint
    assert config["embedder_name"] == embedder.name
    evals = records(output, "eval")
    assert evals[-1]["distill_cos_mean_pool"] > 0 and "finesse_L4" in evals[-1]


# --- subprocesses: kill -9, Ctrl-C, two processes ---------------------------------------------

RESUME_STAGES = (
    "  - {name: pre, objective: vbert, data: 'synthetic:articles?n=96&dim=16&max_len=16&seed=1', "
    "ppe_dim: 8, lr: 1.0e-3, batch_size: 8, steps: 24}\n"
    "  - {name: over, objective: distill, data: 'synthetic:pairs?n=96&dim=16&min_len=8&max_len=24&seed=2', "
    "ppe_dim: 4, lr: 2.0e-3, batch_size: 8, steps: 24}\n"
    "  - {name: fit, objective: distill, data: 'synthetic:pairs?n=64&dim=16&max_len=10&seed=3', "
    "lr: 1.0e-3, batch_size: 8, epochs: 2, grad_accum: 2}\n"
)


def cli(recipe: Path, output: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "vbert.cli.train",
        "--recipe",
        str(recipe),
        "--output",
        str(output),
        "--no-progress",
    ]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_checkpoint(process: subprocess.Popen, output: Path, prefix: str, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    latest = output / ckpt.CHECKPOINTS_DIR / ckpt.LATEST_FILE
    while time.monotonic() < deadline:
        if latest.is_file() and (name := latest.read_text().strip()).startswith(prefix):
            return name
        if process.poll() is not None:
            pytest.fail(f"the run ended before a {prefix} checkpoint:\n{process.stdout.read()}")
        time.sleep(0.005)
    process.kill()
    pytest.fail(f"no {prefix} checkpoint within {timeout} s")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    recipe = folder / "recipe.yaml"
    recipe.write_text(small_recipe("resume", RESUME_STAGES))
    process = cli(recipe, folder / "run")
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    return recipe, folder / "run"


@pytest.mark.slow
def test_kill_9_and_rerun_reaches_the_same_weights(uninterrupted, tmp_path):
    recipe, reference = uninterrupted
    output = tmp_path / "run"
    for prefix in ("stage00", "stage01"):  # killed in stage 1, then again in stage 2 after resuming
        process = cli(recipe, output)
        killed_at = wait_for_checkpoint(process, output, prefix)
        assert process.poll() is None, "the run must still be going when it is killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert not (output / "model").exists(), f"killed at {killed_at}, before the end"
    process = cli(recipe, output)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    assert "resuming from" in out

    assert_same_weights(output / "model", reference / "model")
    for stage in ("01-pre", "02-over", "03-fit"):
        assert_same_weights(output / "stages" / stage, reference / "stages" / stage)
    assert stable(records(output)) == stable(records(reference))


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_the_same_command_continues(uninterrupted, tmp_path):
    recipe, reference = uninterrupted
    output = tmp_path / "run"
    process = cli(recipe, output)
    wait_for_checkpoint(process, output, "stage01")
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 130, out
    assert "checkpoint saved at" in out and "run the same command to continue" in out
    state = ckpt.read_json(ckpt.latest_checkpoint(output) / ckpt.STATE_FILE)
    assert state["stage_index"] >= 1 and not (output / "model").exists()

    process = cli(recipe, output)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out
    assert_same_weights(output / "model", reference / "model")


@pytest.mark.slow
def test_two_processes_under_accelerate_launch(tmp_path):
    """The tiny recipe on 2 CPU processes (DDP over gloo) with `accelerate launch`."""
    launcher = Path(sys.executable).with_name("accelerate")
    if not launcher.is_file():
        launcher = shutil.which("accelerate")
    assert launcher, "accelerate's launcher is installed with the accelerate package"
    output = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    command = [
        str(launcher), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
        "-m", "vbert.cli.train", "--recipe", str(TINY), "--output", str(output), "--no-progress",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (output / "model" / "model.safetensors").is_file()
    assert "num_processes: 2" in (output / "model" / "README.md").read_text()
    refine = [r for r in records(output, "train") if r["stage"] == "refine"]
    # 128 pairs / 16 = 8 batches per epoch, split over 2 processes -> 4 steps per epoch, 2 epochs.
    assert refine[-1]["step"] == 8
    assert refine[-1]["samples"] - refine[0]["samples"] < refine[-1]["samples"]
    assert result.stdout.count("final model:") == 1
