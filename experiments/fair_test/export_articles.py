"""Write the Debian corpus's articles as shuffled JSONL files, one per split, for `--corpus files`.

`vbert data n-to-1` and `vbert data articles` take the first `--max-articles` articles of a corpus
in its own order (package by package); reading a shuffled file instead gives a small build a fair
sample of packages and languages. Rows keep each article's id and translation group, so
`vbert.data.splits` assigns every article to the same split as in the Debian corpus itself.

    python export_articles.py --out DIR      # DIR/test.jsonl and DIR/trainval.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vbert.data.corpora import load_corpus
from vbert.data.splits import split_of
from vbert.files import atomic_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffle (splits always use seed 0)")
    args = parser.parse_args()
    parts: dict[str, list[dict]] = {"test": [], "trainval": []}
    for article in load_corpus("debian"):
        parts["test" if split_of(article) == "test" else "trainval"].append(article.to_dict())
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for name, rows in parts.items():
        path = args.out / f"{name}.jsonl"
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            for index in rng.permutation(len(rows)):
                f.write(json.dumps(rows[index], ensure_ascii=False) + "\n")
        print(f"{path}: {len(rows)} articles")


if __name__ == "__main__":
    main()
