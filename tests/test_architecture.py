"""Layout rules of docs/architecture.md that a linter does not check."""

from pathlib import Path

import vbert

MAX_LINES = 500


def test_no_source_file_exceeds_the_line_limit():
    package = Path(vbert.__file__).parent
    too_long = {
        str(path.relative_to(package)): lines
        for path in sorted(package.rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not too_long, f"split these files (at most {MAX_LINES} lines each): {too_long}"
