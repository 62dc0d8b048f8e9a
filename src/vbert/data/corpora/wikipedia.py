"""Wikipedia articles from the Hugging Face ``wikimedia/wikipedia`` dataset (needs the hub).

Configs are ``<date>.<lang>`` (``20231101.ko``); rows have ``id``, ``url``, ``title``, ``text``.
The dataset is streamed, so nothing but the rows read is downloaded. ``data_files=`` reads
local Parquet files of the same schema instead (tests, mirrors, air-gapped copies).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path

from vbert.data.article import Article
from vbert.data.corpora.language import normalize_lang

DATASET = "wikimedia/wikipedia"
DEFAULT_DATE = "20231101"
# Wikipedia text is dual-licensed; the dataset card lists both.
LICENSE = "CC-BY-SA-3.0 AND GFDL-1.3-or-later"
REQUIRED_COLUMNS = ("id", "title", "text")


def _rows(lang: str, date: str, data_files: str | Sequence[str] | None, streaming: bool) -> Iterable[dict]:
    import datasets

    if data_files is not None:
        files = [data_files] if isinstance(data_files, (str, Path)) else list(data_files)
        missing = [str(f) for f in files if not Path(f).exists()]
        if missing:
            raise FileNotFoundError(f"Wikipedia data files not found: {', '.join(missing)}")
        dataset = datasets.load_dataset(
            "parquet", data_files=[str(f) for f in files], split="train", streaming=streaming
        )
    else:
        config = f"{date}.{lang.split('-')[0]}"
        try:
            dataset = datasets.load_dataset(DATASET, config, split="train", streaming=streaming)
        except Exception as err:  # the hub client raises many kinds (offline, 404, timeouts)
            raise RuntimeError(
                f"could not open {DATASET} config {config!r} on the Hugging Face hub ({type(err).__name__}: {err}); "
                "check the network and the config name, pass data_files= for local Parquet files, or use the "
                "offline corpus: `vbert corpus fetch debian`"
            ) from err
    columns = dataset.column_names or []
    absent = [c for c in REQUIRED_COLUMNS if c not in columns]
    if columns and absent:
        raise ValueError(
            f"Wikipedia rows need the columns {REQUIRED_COLUMNS}; missing {absent} (found {columns})"
        )
    return dataset


def iter_wikipedia(
    langs: str | Iterable[str] = "en",
    date: str = DEFAULT_DATE,
    data_files: str | Path | Sequence[str | Path] | None = None,
    limit: int | None = None,
    streaming: bool = True,
) -> Iterator[Article]:
    """Yield Wikipedia articles as :class:`Article` (``limit`` per language when given).

    Ids are ``wikipedia:<lang>:<page id>``, stable across runs. Wikipedia pages in different
    languages are not aligned by this dataset, so ``group`` is left empty. With ``data_files``
    a single language is expected: the files' rows are labelled with it.
    """
    lang_list = [langs] if isinstance(langs, str) else list(langs)
    if data_files is not None and len(lang_list) != 1:
        raise ValueError("data_files= holds one language's rows: pass exactly one language with it")
    for raw_lang in lang_list:
        lang = normalize_lang(raw_lang)
        rows = _rows(lang, date, data_files, streaming)
        for row in islice(rows, limit):
            text = row.get("text") or ""
            if not text.strip():
                continue
            yield Article(
                id=f"wikipedia:{lang}:{row['id']}",
                lang=lang,
                title=row.get("title") or "",
                text=text,
                source="wikipedia",
                license=LICENSE,
            )
