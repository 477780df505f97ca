"""The keyword index: SQLite FTS5 over every chunk's title and text, in the same database as the chunk rows.

`chunks_fts` is an external-content FTS5 table (it stores the index, not a second copy of the text),
kept in step with `chunks` by triggers. Every write of a chunk row, and every cascade from a deleted
document or collection, updates it inside the same transaction, so the crash safety of the rows
covers the keyword index too. A store made before the keyword index existed gains it on its next
open (one `rebuild` pass over the stored chunks). Ranking is FTS5's BM25 (title matches weigh double).

Queries are words, not FTS5 syntax: a user's text becomes an OR of its quoted, non-stop-word terms,
so quotes, `NEAR`, `*` or a stray parenthesis can neither fail nor change the meaning of a search.
"""
from __future__ import annotations

import re
import sqlite3

from sqlalchemy import Integer, column, literal_column, select, table, text
from sqlalchemy.engine import Connection, Engine

from .errors import IndexerError

TABLE = "chunks_fts"
TOKENIZER = "porter unicode61 remove_diacritics 2"
TITLE_WEIGHT, TEXT_WEIGHT = 2.0, 1.0

# English stop words: left out of keyword queries and never highlighted
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both
but by can could did do does doing down during each few for from further had has have having he her here hers
herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself yourselves
""".split())

_WORD = re.compile(r"\w+", re.UNICODE)

_DDL = [
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5(title, text, content='chunks', content_rowid='id', "
    f"tokenize='{TOKENIZER}')",
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_insert AFTER INSERT ON chunks BEGIN "
    f"INSERT INTO {TABLE}(rowid, title, text) VALUES (new.id, new.title, new.text); END",
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_delete AFTER DELETE ON chunks BEGIN "
    f"INSERT INTO {TABLE}({TABLE}, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); END",
    f"CREATE TRIGGER IF NOT EXISTS {TABLE}_update AFTER UPDATE OF title, text ON chunks BEGIN "
    f"INSERT INTO {TABLE}({TABLE}, rowid, title, text) VALUES ('delete', old.id, old.title, old.text); "
    f"INSERT INTO {TABLE}(rowid, title, text) VALUES (new.id, new.title, new.text); END",
]

fts = table(TABLE, column("rowid", Integer))


def supported(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def unsupported_message(engine: Engine) -> str:
    return (f"keyword and hybrid search need the SQLite store; this one is {engine.dialect.name} "
            "(search with --mode semantic)")


def install(engine: Engine) -> None:
    """Create the FTS5 table and its triggers where missing; a new table is filled from the stored chunks."""
    if not supported(engine):
        return
    with engine.begin() as connection:
        exists = connection.execute(text("SELECT 1 FROM sqlite_master WHERE name = :name"), {"name": TABLE}).first()
        for statement in _DDL:
            connection.execute(text(statement))
        if exists is None:
            rebuild(connection)


def rebuild(connection: Connection) -> None:
    """Re-derive the whole keyword index from the chunk rows (the repair)."""
    connection.execute(text(f"INSERT INTO {TABLE}({TABLE}) VALUES ('rebuild')"))


def problem(connection: Connection, thorough: bool = False) -> str | None:
    """None when the keyword index matches the chunk rows, else what differs. Quick: compares row counts
    (every writable open); thorough: FTS5's integrity check, which re-reads every chunk (`stats --check`)."""
    indexed = connection.execute(text(f"SELECT count(*) FROM {TABLE}_docsize")).scalar_one()
    chunks = connection.execute(text("SELECT count(*) FROM chunks")).scalar_one()
    if indexed != chunks:
        return f"keyword index covers {indexed} chunks of {chunks}"
    if thorough:
        try:
            connection.execute(text(f"INSERT INTO {TABLE}({TABLE}, rank) VALUES ('integrity-check', 1)"))
        except Exception as exc:  # sqlite3 reports a mismatch as a DatabaseError
            return f"keyword index out of step with the chunks ({str(exc).splitlines()[0]})"
    return None


def terms(query: str) -> list[str]:
    """The words a keyword search looks for: lower-cased, stop words left out, each once, in order."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query.lower()):
        if word not in STOP_WORDS:
            seen.setdefault(word, None)
    return list(seen)


def match_expression(query: str) -> str | None:
    """An FTS5 MATCH expression that ORs the query's terms (each quoted: no FTS5 syntax gets through)."""
    words = terms(query)
    if not words:
        return None
    return " OR ".join('"' + word.replace('"', '""') + '"' for word in words)


def ranked(expression: str):
    """(chunk id, score) of the chunks matching an expression, best first: score is -BM25 (higher is better).
    The caller joins the chunk and document rows and adds its conditions and limit."""
    score = literal_column(f"-bm25({TABLE}, {TITLE_WEIGHT}, {TEXT_WEIGHT})")
    return (select(fts.c.rowid.label("chunk_id"), score.label("score"))
            .where(text(f"{TABLE} MATCH :expression").bindparams(expression=expression))
            .order_by(score.desc()))


def require(engine: Engine) -> None:
    if not supported(engine):
        raise IndexerError(unsupported_message(engine))


class MemoryKeywordIndex:
    """The same keyword ranking over a corpus held in memory (an in-memory SQLite FTS5 table): what
    `promptembedder eval --mode keyword|hybrid` scores, so the evaluation measures the product's ranking."""

    name = "keyword"
    fingerprint = f"fts5-{TOKENIZER.replace(' ', '-')}-bm25-{TITLE_WEIGHT}-{TEXT_WEIGHT}"

    def __init__(self):
        self._db = sqlite3.connect(":memory:")
        self._db.execute(f"CREATE VIRTUAL TABLE docs USING fts5(title, text, tokenize='{TOKENIZER}')")
        self._ids: list[str] = []

    def index(self, ids: list[str], documents: list[str]) -> None:
        """Documents as one text each (a BEIR title joined to its text, as every evaluated model reads them)."""
        self._db.execute("DELETE FROM docs")
        self._ids = list(ids)
        self._db.executemany("INSERT INTO docs(rowid, title, text) VALUES (?, '', ?)", enumerate(documents))

    def search(self, queries: list[str], top_k: int = 100) -> list[dict[str, float]]:
        """For each query, {doc id: -BM25} of its top_k documents; documents sharing no term are left out."""
        out = []
        for query in queries:
            expression = match_expression(query)
            rows = [] if expression is None else self._db.execute(
                f"SELECT rowid, -bm25(docs, {TITLE_WEIGHT}, {TEXT_WEIGHT}) AS s FROM docs WHERE docs MATCH ? "
                "ORDER BY s DESC LIMIT ?", (expression, top_k)).fetchall()
            out.append({self._ids[i]: float(s) for i, s in rows})
        return out
