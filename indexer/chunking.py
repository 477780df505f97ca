"""Split text into overlapping windows counted in the embedder's own tokens.

Windows are cut at token boundaries and mapped back to character offsets, so a chunk's text is an
exact slice of the source (nothing is decoded and re-encoded). A window's end is moved back to the
last whitespace inside it when there is one, so words are not split.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Chunk:
    text: str
    start: int  # character offsets in the record's text
    end: int
    tokens: int


def token_offsets(tokenizer, text: str) -> list[tuple[int, int]]:
    """(start, end) character span of every token, without special tokens."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False,
                        verbose=False)
    return [tuple(span) for span in encoded["offset_mapping"]]


def check_sizes(max_tokens: int, overlap: int) -> None:
    if max_tokens < 8:
        raise ValueError(f"chunk size must be at least 8 tokens, not {max_tokens}")
    if not 0 <= overlap <= max_tokens // 2:
        raise ValueError(f"chunk overlap must be between 0 and half the chunk size ({max_tokens // 2}), not {overlap}")


SEGMENT_CHARS = 50_000  # text tokenized at a time: a tokenizer's offsets cost ~400 bytes per character


def chunk_text(text: str, tokenizer, max_tokens: int = 256, overlap: int = 32) -> list[Chunk]:
    """Windows of at most max_tokens tokens, overlapping by about `overlap`. Long texts are tokenized a
    segment at a time (cut at whitespace), each segment starting where the next window starts, so memory
    stays bounded whatever the file's size and the windows are those of tokenizing the whole text."""
    check_sizes(max_tokens, overlap)
    chunks: list[Chunk] = []
    base, size = 0, SEGMENT_CHARS
    while base < len(text):
        end = _segment_end(text, base, size)
        offsets = [(a + base, b + base) for a, b in token_offsets(tokenizer, text[base:end])]
        if not offsets:
            break
        first = _windows(text, offsets, max_tokens, overlap, chunks, final=end >= len(text))
        if first is None:
            break
        if first == 0:
            size *= 2  # not even two windows in this segment (very large chunks): take more text
        base = offsets[first][0]
    return chunks


def _segment_end(text: str, base: int, size: int) -> int:
    if len(text) - base <= size:
        return len(text)
    cut = text.rfind(" ", base + size // 2, base + size)
    return cut if cut > base else base + size


def _windows(text: str, offsets, max_tokens: int, overlap: int, chunks: list[Chunk], final: bool) -> int | None:
    """Append the windows over one segment's tokens; None when the text is done, else the token index the
    next segment starts at (a window that could reach past this segment waits for it)."""
    first = 0
    while first < len(offsets):
        last = min(first + max_tokens, len(offsets))  # exclusive
        if not final and last + max_tokens > len(offsets):
            return first  # the rest is tokenized again with the next segment, whole windows only
        if last < len(offsets):
            last = _back_to_word_boundary(text, offsets, first, last)
        start, end = offsets[first][0], offsets[last - 1][1]
        piece = text[start:end]
        if piece.strip():
            lead = len(piece) - len(piece.lstrip())
            piece = piece.strip()
            chunks.append(Chunk(piece, start + lead, start + lead + len(piece), last - first))
        if last >= len(offsets):
            return None
        first = _forward_to_word_start(text, offsets, max(last - overlap, first + 1), last)
    return None


def _forward_to_word_start(text: str, offsets, first: int, limit: int) -> int:
    """Start the next window (inside the overlap) at a token that begins a word, when there is one."""
    for cut in range(first, limit):
        start = offsets[cut][0]
        if start == 0 or text[start - 1].isspace() or text[start].isspace():
            return cut
    return first


def _back_to_word_boundary(text: str, offsets, first: int, last: int) -> int:
    """Move an exclusive window end back (at most a quarter window) to a token that starts with a space."""
    floor = first + max(1, (last - first) * 3 // 4)
    for cut in range(last, floor, -1):
        start = offsets[cut][0] if cut < len(offsets) else len(text)
        if start > 0 and text[start - 1:start].isspace() or text[start:start + 1].isspace():
            return cut
    return last
