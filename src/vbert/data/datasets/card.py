"""The Hugging Face dataset card (README.md) every dataset folder carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DatasetCard:
    """What a dataset says about itself: a title, a summary, its columns' meanings, and extra
    ``configs`` (name → file pattern) besides the default one of the splits."""

    title: str
    summary: str
    columns: dict[str, str]
    extra_configs: dict[str, str] = field(default_factory=dict)

    def render(self, manifest: dict[str, Any]) -> str:
        """The card's text for a finished ``manifest``."""
        return dataset_card(manifest, self.title, self.summary, self.columns, self.extra_configs)


def dataset_card(
    manifest: dict[str, Any], title: str, summary: str, columns: dict[str, str], extra_configs: dict[str, str]
) -> str:
    """A Hugging Face dataset card: YAML ``configs`` (so ``load_dataset(folder)`` finds the splits) + a summary."""
    lines = ["---", "configs:", "- config_name: default", "  data_files:"]
    for split in sorted(manifest["splits"]):
        lines += [f"  - split: {split}", f"    path: data/{split}-*.parquet"]
    for name, pattern in extra_configs.items():
        lines += [f"- config_name: {name}", "  data_files:", "  - split: train", f"    path: {pattern}"]
    embedder = manifest["embedder"]
    lines += [
        "---",
        "",
        f"# {title}",
        "",
        summary,
        "",
        "Built by `vbert`; every parameter below is also in `manifest.json`, with the sha256 of each file.",
        "",
        f"- embedder: `{embedder['name']}` (fingerprint `{embedder['fingerprint']}`, dim {embedder['dim']}, "
        f"document prefix {embedder['prefix']!r})",
        f"- parameters: `{canonical_params(manifest['params'])}`",
        f"- vectors stored as {manifest['dtype']}, seed {manifest['seed']}, splits: {manifest['split_spec']}",
        f"- corpus: {manifest['corpus'].get('n_articles', 0)} articles, sha256 `{manifest['corpus']['sha256']}`",
        "- rows: " + ", ".join(f"{s} {v['rows']}" for s, v in sorted(manifest["splits"].items())),
        "",
        "| column | meaning |",
        "|---|---|",
        *(f"| `{name}` | {meaning} |" for name, meaning in columns.items()),
        "",
    ]
    return "\n".join(lines)


def canonical_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))
