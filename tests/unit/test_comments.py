"""Comments stand on their own: no citations of documents that are not in the repository.

A reader has this repository and the public web, nothing else. So no comment, docstring or doc may
point at "reference \u00a7N", "decision N" or "pitfall N" of a document kept elsewhere; state the fact
and, where a source helps, cite a public one (a Telnyx docs URL, an RFC section, a Kamailio module
doc) or a file of this repository. A section sign is allowed only right after "RFC NNNN" or inside a
URL.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["src", "tests", "benchmarks", "docs", "README.md"]
SECTION = "\u00a7"

FORBIDDEN = [
    re.compile(rf"reference\s*{SECTION}", re.IGNORECASE),
    re.compile(r"\bdecision\s+\d", re.IGNORECASE),
    re.compile(r"\bpitfall\s+\d", re.IGNORECASE),
]
# Where a section sign may stand: inside a URL, or right after an RFC number ("RFC 9110 \u00a710.2.3").
ALLOWED_SECTION = re.compile(rf"https?://\S*|\bRFC\s?\d{{3,5}},?\s?{SECTION}", re.IGNORECASE)


def _files() -> list[Path]:
    found: list[Path] = []
    for name in SCANNED:
        top = ROOT / name
        candidates = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for path in candidates:
            parts = path.relative_to(ROOT).parts
            if any(part == "__pycache__" or part.startswith(".") for part in parts):
                continue
            if path.resolve() == Path(__file__).resolve():
                continue
            found.append(path)
    return found


def _problems(text: str) -> list[tuple[int, str]]:
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        if any(pattern.search(line) for pattern in FORBIDDEN) or SECTION in ALLOWED_SECTION.sub("", line):
            problems.append((number, line.strip()))
    return problems


def test_no_comment_cites_a_document_outside_the_repository() -> None:
    found = []
    for path in _files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # not text
        found += [f"{path.relative_to(ROOT)}:{n}: {line}" for n, line in _problems(text)]
    assert not found, "cites a document not in the repository:\n" + "\n".join(found)


def test_the_guard_knows_a_citation_from_an_rfc_or_a_url() -> None:
    assert _problems(f"see reference {SECTION}1.2")
    assert _problems("as decision 9 says")
    assert _problems("Pitfall 17: bound the wait")
    assert _problems(f"README.db_sqlite {SECTION}5")
    assert not _problems(f"Retry-After (RFC 9110 {SECTION}10.2.3)")
    assert not _problems(f"https://example.com/doc#{SECTION}3")
    assert not _problems("a decision the tests pin; pitfalls abound")
