"""The data formats on disk, read once for training and evaluation: JSON lines, BEIR folders, scored pairs.

One rule for a BEIR document's text (`document_text`: "title text", as mteb feeds documents to the
models it scores), one line reader that reports malformed input as `file:line: what is wrong`.
`Problems` decides what a malformed line does: raise at once (evaluation, and training by default)
or be left out and collected (training's --on-error skip). Standard library only: these readers run
on the GPU machine too.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .errors import TrainingError


class MissingFile(TrainingError, FileNotFoundError):
    """A data file that is not there: a training error with its path, and a FileNotFoundError to callers."""


class Problems:
    """Where malformed input goes: raised at once, or collected and skipped. hint: appended to a raised message."""

    def __init__(self, on_error: str = "raise", hint: str = ""):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
        self.on_error, self.hint = on_error, hint
        self.messages: list[str] = []

    def report(self, path: Path, line: int, message: str) -> None:
        text = f"{path}:{line}: {message}"
        if self.on_error == "raise":
            raise TrainingError(text + (f" ({self.hint})" if self.hint else ""))
        self.messages.append(text)


def lines(path: Path, problems: Problems, keep_blank: bool = False) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line (blank ones only with keep_blank); a binary file is refused whole,
    an undecodable line reported, never guessed. A UTF-8 byte-order mark is dropped."""
    path = Path(path)
    if not path.exists():
        raise MissingFile(f"{path}: no such file")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory, expected a file")
    with path.open("rb") as f:
        if b"\x00" in f.read(4096):
            raise TrainingError(f"{path}: looks binary, not a text file")
        f.seek(0)
        for number, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                problems.report(path, number, f"not valid UTF-8 ({exc.reason} at byte {exc.start})")
                if keep_blank:
                    yield number, ""  # files read side by side stay aligned
                continue
            if number == 1:
                text = text.lstrip("\ufeff")
            if keep_blank or text.strip():
                yield number, text


def json_objects(path: Path, problems: Problems, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each JSON line that is an object with the required keys."""
    for number, text in lines(path, problems):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.report(path, number, f"not valid JSON ({exc.msg})")
            continue
        if not isinstance(value, dict):
            problems.report(path, number, f"expected a JSON object, found {type(value).__name__}")
            continue
        missing = [key for key in required if key not in value]
        if missing:
            problems.report(path, number, f"a JSON object with {', '.join(required)} is expected "
                                          f"(no {', '.join(repr(k) for k in missing)})")
            continue
        yield number, value


def document_text(title: str, text: str) -> str:
    """What a model reads for a titled document. mteb joins title and text with a space
    (mteb._create_dataloaders._corpus_to_dict); training reads them the same way, so a positive seen in
    training is the document the evaluation scores, and cached vectors are found again by their text."""
    return (title + " " + text).strip() if title else text.strip()


@dataclass
class RetrievalData:
    corpus_ids: list[str]
    titles: list[str]
    texts: list[str]
    query_ids: list[str]
    queries: list[str]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance > 0}

    @property
    def documents(self) -> list[str]:
        return [document_text(t, x) for t, x in zip(self.titles, self.texts)]


@dataclass
class PairData:
    """STS (scores are graded similarities) or pair classification (scores are 0/1 labels)."""

    first: list[str]
    second: list[str]
    scores: list[float]


def read_beir(folder: str | Path, split: str = "test", problems: Problems | None = None) -> RetrievalData:
    """corpus.jsonl (_id, title, text), queries.jsonl (_id, text), qrels/SPLIT.tsv (a header line allowed).

    Only the queries with a relevant document in the split's qrels are kept, as in BEIR.
    """
    problems = problems or Problems()
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainingError(f"{folder}: not a directory (a BEIR folder has corpus.jsonl, queries.jsonl, qrels/)")
    corpus = {str(obj["_id"]): obj for _, obj in json_objects(folder / "corpus.jsonl", problems, ("_id", "text"))}
    queries = {str(obj["_id"]): str(obj["text"] or "")
               for _, obj in json_objects(folder / "queries.jsonl", problems, ("_id", "text"))}
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        have = sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        raise TrainingError(f"{qrels_path}: no such file (splits here: {', '.join(have) or 'none'})")
    qrels: dict[str, dict[str, int]] = {}
    for number, line in lines(qrels_path, problems):
        fields = [f.strip() for f in line.split("\t")]
        if number == 1 and not _is_number(fields[-1]):
            continue  # the header
        if len(fields) < 3 or not _is_number(fields[2]):
            problems.report(qrels_path, number, "expected 'query-id<TAB>corpus-id<TAB>score'")
            continue
        query_id, doc_id, score = fields[0], fields[1], int(float(fields[2]))
        if query_id not in queries:
            problems.report(qrels_path, number, f"query '{query_id}' is not in queries.jsonl")
        elif doc_id not in corpus:
            problems.report(qrels_path, number, f"document '{doc_id}' is not in corpus.jsonl")
        elif score > 0:
            qrels.setdefault(query_id, {})[doc_id] = score
    if not qrels:
        raise TrainingError(f"{qrels_path}: no relevant (query, document) pair")
    query_ids = [q for q in queries if q in qrels]
    return RetrievalData(corpus_ids=list(corpus), titles=[str(d.get("title") or "") for d in corpus.values()],
                         texts=[str(d["text"] or "") for d in corpus.values()], query_ids=query_ids,
                         queries=[queries[q] for q in query_ids], qrels=qrels)


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def read_pairs(path: Path, score_key: str = "score", parse: Callable[[str], float] = float,
               problems: Problems | None = None) -> PairData:
    """Scored text pairs: the STS Benchmark layout (genre, file, year, id, score, sentence1, sentence2, extra
    columns allowed; tabs with quoting off: sentences carry quote characters), a 3-column TSV (text1, text2,
    score; a header line allowed), or JSONL (sentence1, sentence2, score or label)."""
    problems = problems or Problems()
    first, second, scores = [], [], []
    if path.suffix == ".jsonl":
        rows = ((number, row.get(score_key, row.get("score", row.get("label"))), row["sentence1"], row["sentence2"],
                 False) for number, row in json_objects(path, problems, ("sentence1", "sentence2")))
    else:
        rows = _tsv_pairs(path, score_key, problems)
    for number, value, a, b, may_be_header in rows:
        try:
            score = parse(str(value))
        except ValueError:
            if number == 1 and may_be_header:
                continue
            problems.report(path, number, f"bad {score_key} {str(value)!r:.40}")
            continue
        first.append(str(a))
        second.append(str(b))
        scores.append(score)
    if not scores:
        raise TrainingError(f"{path}: no pairs")
    return PairData(first, second, scores)


def _tsv_pairs(path: Path, score_key: str, problems: Problems) -> Iterator[tuple[int, str, str, str, bool]]:
    """(line number, score, text1, text2, whether the line may be a header: the 3-column form's first)."""
    for number, text in lines(path, problems):
        fields = next(csv.reader([text], delimiter="\t", quoting=csv.QUOTE_NONE))
        if len(fields) >= 7:  # STS Benchmark layout: no header
            yield number, fields[4], fields[5], fields[6], False
        elif len(fields) == 3:
            yield number, fields[2], fields[0], fields[1], True
        else:
            problems.report(path, number, f"expected 3 tab-separated columns (text1, text2, {score_key}) or the STS "
                                          f"Benchmark layout, got {len(fields)}")
