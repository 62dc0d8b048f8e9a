"""Drive the real ``vbert`` app in-process with typer's runner, on a tiny embedder and merger."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.cli_runner import write_jsonl


@pytest.fixture(autouse=True)
def private_vbert_home(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chunk cache and anything else under $VBERT_HOME go to the test's folder (integration
    tests keep the real home, where the default embedder is built, and pass their own --cache)."""
    if request.node.get_closest_marker("integration") is None:
        monkeypatch.setenv("VBERT_HOME", str(tmp_path / "vbert-home"))


@pytest.fixture
def three_docs(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "docs.jsonl",
        [{"id": name, "text": f"{name} is a short document about {name} and more"} for name in "abc"],
    )


@pytest.fixture(scope="session")
def tiny_merger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained-kind (randomly initialised) merger for the tiny 32-d embedder, saved once."""
    from vbert.testing.tiny_models import tiny_merger

    folder = tmp_path_factory.mktemp("tiny-merger")
    tiny_merger(32, seed=0, num_layers=1, ppe_dim=8, dropout=0.1).eval().save_pretrained(folder)
    return folder
