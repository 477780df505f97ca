"""Metadata filters: `key=value`, `key!=value`, `key>=value`, `key<value`, ... and a source path prefix.

A key is looked up in the chunk's record metadata first (JSON fields, CSV columns, PDF page), then
in its document's (name, ext, modified); `path` and `title` are the source path and the title.
Numbers compare as numbers, anything else as text (ISO dates order correctly as text).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Float, String, and_, cast, func, or_
from sqlalchemy.sql.elements import ColumnElement

from .store import ChunkRow, DocumentRow

_FILTER = re.compile(r"^\s*([^=!<>\s]+)\s*(=|==|!=|>=|<=|>|<)\s*(.*)$")


@dataclass
class Filter:
    key: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> "Filter":
        match = _FILTER.match(text)
        if not match:
            raise ValueError(f"cannot read filter {text!r}; write key=value, key!=value, key>=value, key<value, ...")
        key, op, value = match.groups()
        return cls(key, "=" if op == "==" else op, value.strip())

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.value}"


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _field(key: str) -> ColumnElement:
    if key == "path":
        return DocumentRow.path
    if key == "title":
        return ChunkRow.title
    return func.coalesce(ChunkRow.meta[key].as_string(), DocumentRow.meta[key].as_string())


def condition(flt: Filter) -> ColumnElement:
    field = _field(flt.key)
    number = _number(flt.value)
    as_text = cast(field, String)
    boolean = {"true": 1, "false": 0}.get(flt.value.lower())
    if flt.op in ("=", "!="):
        same = as_text == flt.value
        if number is not None:
            same = or_(same, and_(field.is_not(None), cast(field, Float) == number))
        if boolean is not None:
            same = or_(same, cast(field, String) == str(boolean))
        return same if flt.op == "=" else and_(field.is_not(None), ~same)
    column = cast(field, Float) if number is not None else as_text
    bound = number if number is not None else flt.value
    comparison = {">": column > bound, ">=": column >= bound, "<": column < bound, "<=": column <= bound}[flt.op]
    return and_(field.is_not(None), comparison)


def path_prefix_condition(prefix: str) -> ColumnElement:
    # substr, not LIKE: SQLite's LIKE ignores case, paths do not
    return func.substr(DocumentRow.path, 1, len(prefix)) == prefix
