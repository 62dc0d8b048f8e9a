"""Options that several commands take, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

CacheOpt = Annotated[Path | None, typer.Option(help="Chunk cache SQLite file (default under $VBERT_HOME).")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the chunk cache.")]
