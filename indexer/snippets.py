"""What a person reads in a hit: a window of the chunk around its best match, query terms marked.

A word is marked when it is a query term or the same word with an inflection (files ~ file, indexing ~
index), never when the term is only its prefix (file does not mark filesystem); stop words are never marked.
"""
from __future__ import annotations

import re
from typing import Callable

from .keyword import terms

SNIPPET_CHARS = 300
_WORD = re.compile(r"\w+", re.UNICODE)
_SUFFIXES = ("ingly", "ings", "ing", "edly", "ed", "es", "s", "ly")


def forms(word: str) -> set[str]:
    """The word and its possible bases without an inflection (files: file, fil), never shorter than 3 letters."""
    word = word.lower()
    found = {word}
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[:-len(suffix)]
            found |= {base, base + "e"}  # files -> file, indexes -> index, parsed -> parse
    return found


def matches(text: str, query: str) -> list[tuple[int, int]]:
    """(start, end) character spans of the words in text that match a query term."""
    wanted = {form for term in terms(query) for form in forms(term)}
    if not wanted:
        return []
    return [m.span() for m in _WORD.finditer(text) if forms(m.group()) & wanted]


def snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> tuple[str, list[tuple[int, int]]]:
    """(window of about `width` characters with the most distinct matched terms, the matches' spans in it).

    Whitespace runs are collapsed first; the window starts and ends on word boundaries, with '…' where cut."""
    flat = " ".join(text.split())
    spans = matches(flat, query)
    if len(flat) <= width:
        return flat, spans
    start = _best_start(flat, spans, width)
    end = min(len(flat), start + width)
    if start > 0:
        start = flat.find(" ", start) + 1 or start  # no half word at the front
    if end < len(flat):
        end = flat.rfind(" ", start, end) if flat.rfind(" ", start, end) > start else end
    prefix, suffix = ("…" if start > 0 else ""), ("…" if end < len(flat) else "")
    shift = len(prefix) - start
    inside = [(a + shift, b + shift) for a, b in spans if a >= start and b <= end]
    return prefix + flat[start:end] + suffix, inside


def _best_start(flat: str, spans: list[tuple[int, int]], width: int) -> int:
    """Where the window covering the most distinct matched words begins (a little context before it)."""
    if not spans:
        return 0
    best, best_count = spans[0][0], 0
    for i, (a, _) in enumerate(spans):
        covered = {flat[x:y].lower() for x, y in spans[i:] if y <= a + width}
        if len(covered) > best_count:
            best, best_count = a, len(covered)
    return max(0, min(best - width // 6, len(flat) - width))


def highlight(text: str, spans: list[tuple[int, int]], before: str, after: str,
              escape: Callable[[str], str] = str) -> str:
    """text with each span wrapped in before/after (spans sorted, not overlapping); escape: applied to the
    text's pieces, not to the marks (html.escape for a page)."""
    out, last = [], 0
    for a, b in spans:
        out += [escape(text[last:a]), before, escape(text[a:b]), after]
        last = b
    out.append(escape(text[last:]))
    return "".join(out)
