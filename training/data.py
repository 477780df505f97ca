"""Training records and the readers that make them.

Every reader yields `Record`s: (instruction, query, positive, negatives, task). Sources:

- `jsonl`: records `{"instruction", "query", "positive", "negatives": [...], "task"}` (what
  `promptembedder prepare-data` writes; instruction, negatives and task are optional),
- `beir`: a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv), one record per positive pair,
- `sts`: an STS Benchmark file (tab-separated, no quoting, score in column 5, sentences in 6 and 7,
  extra columns allowed); pairs scoring >= min_score become positives,
- `qa`: question/answer pairs in JSONL (`{"question", "answer"}`, as MedQuAD's pairs.jsonl),
- `paraphrase`: a folder with a.toks, b.toks, sim.txt (Twitter URL corpus); sim 1 pairs are positives.

Readers use the standard library only (the GPU machine has no `datasets`). A malformed record is
reported as `file:line: what is wrong`; on_error="raise" stops there, "skip" leaves it out and
collects the message in `problems`.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import formats
from .errors import TrainingError
from .formats import Problems, json_objects, lines
from .instructions import SOURCE_INSTRUCTIONS

KINDS = tuple(SOURCE_INSTRUCTIONS)  # jsonl, beir, sts, qa, paraphrase
SKIP_HINT = "pass --on-error skip to leave malformed records out"


@dataclass
class Record:
    query: str
    positive: str
    negatives: list[str] = field(default_factory=list)
    instruction: str = ""
    task: str = "default"

    def texts(self) -> list[str]:
        return [self.query, self.positive, *self.negatives]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


@dataclass
class Source:
    """One data source as the CLI names it: KIND:PATH[::INSTRUCTION]."""

    kind: str
    path: Path
    instruction: str | None = None

    @classmethod
    def parse(cls, spec: str) -> "Source":
        kind, sep, rest = spec.partition(":")
        if sep and kind not in KINDS and re.fullmatch(r"[a-z]{2,}", kind) and not Path(spec).expanduser().exists():
            raise ValueError(f"unknown training data kind '{kind}' in {spec!r}; one of {', '.join(KINDS)} "
                             "(KIND:PATH), or a bare path to JSONL records")
        if not sep or kind not in KINDS:
            # a bare path: JSONL records
            kind, rest = "jsonl", spec
        path, _, instruction = rest.partition("::")
        return cls(kind, Path(path).expanduser(), instruction or None)

    @property
    def task(self) -> str:
        name = self.path.stem if self.path.is_file() else self.path.name
        return f"{self.kind}:{name}"


def _text(value, name: str, path: Path, number: int, problems: Problems) -> str | None:
    if not isinstance(value, str) or not value.strip():
        problems.report(path, number, f"'{name}' must be a non-empty string, found {value!r:.60}")
        return None
    return value


def _clean(record: Record) -> Record | None:
    """Negatives equal to the query or positive are false negatives: drop them; duplicates too."""
    if record.query == record.positive:
        return None
    seen = {record.query, record.positive}
    negatives = []
    for text in record.negatives:
        if text not in seen:
            seen.add(text)
            negatives.append(text)
    record.negatives = negatives
    return record


def read_jsonl(path: Path, instruction: str | None = None, task: str | None = None,
               problems: Problems | None = None) -> list[Record]:
    problems = problems or Problems(hint=SKIP_HINT)
    records = []
    for number, obj in json_objects(path, problems):
        query = _text(obj.get("query"), "query", path, number, problems)
        positive = _text(obj.get("positive"), "positive", path, number, problems) if query else None
        if query is None or positive is None:
            continue
        negatives = obj.get("negatives", [])
        if isinstance(negatives, str):
            negatives = [negatives]
        if not isinstance(negatives, list) or not all(isinstance(n, str) and n.strip() for n in negatives):
            problems.report(path, number, "'negatives' must be a list of non-empty strings")
            continue
        record_instruction = obj.get("instruction", instruction if instruction is not None
                                     else SOURCE_INSTRUCTIONS["jsonl"])
        if not isinstance(record_instruction, str):
            problems.report(path, number, "'instruction' must be a string")
            continue
        record_task = obj.get("task") or task or f"jsonl:{path.stem}"
        record = _clean(Record(query, positive, list(negatives), record_instruction, str(record_task)))
        if record is not None:
            records.append(record)
    return records


def read_qa(path: Path, instruction: str | None = None, task: str | None = None,
            problems: Problems | None = None) -> list[Record]:
    problems = problems or Problems(hint=SKIP_HINT)
    instruction = instruction or SOURCE_INSTRUCTIONS["qa"]
    records = []
    for number, obj in json_objects(path, problems):
        question = _text(obj.get("question"), "question", path, number, problems)
        answer = _text(obj.get("answer"), "answer", path, number, problems) if question else None
        if question and answer:
            record = _clean(Record(question, answer, [], instruction, task or f"qa:{path.stem}"))
            if record is not None:
                records.append(record)
    return records


def read_sts(path: Path, instruction: str | None = None, task: str | None = None,
             problems: Problems | None = None, min_score: float = 4.0) -> list[Record]:
    """Pairs of a scored pair file (formats.read_pairs: the STS Benchmark layout...) scoring >= min_score."""
    problems = problems or Problems(hint=SKIP_HINT)
    instruction = instruction or SOURCE_INSTRUCTIONS["sts"]
    pairs = formats.read_pairs(path, problems=problems)
    records = []
    for first, second, score in zip(pairs.first, pairs.second, pairs.scores):
        if score >= min_score and first.strip() and second.strip():
            record = _clean(Record(first.strip(), second.strip(), [], instruction, task or f"sts:{path.stem}"))
            if record is not None:
                records.append(record)
    return records


def read_beir(folder: Path, instruction: str | None = None, task: str | None = None,
              problems: Problems | None = None, split: str = "train") -> list[Record]:
    """One record per (query, relevant document) of the split's qrels; never pass the test split here."""
    problems = problems or Problems(hint=SKIP_HINT)
    instruction = instruction or SOURCE_INSTRUCTIONS["beir"]
    task = task or f"beir:{folder.name}"
    data = formats.read_beir(folder, split, problems)
    documents = dict(zip(data.corpus_ids, data.documents))
    records = []
    for query_id, query in zip(data.query_ids, data.queries):
        for doc_id in data.qrels[query_id]:
            if query.strip() and documents[doc_id]:
                record = _clean(Record(query, documents[doc_id], [], instruction, task))
                if record is not None:
                    records.append(record)
    return records


def read_beir_corpus(folder: Path) -> list[str]:
    """Every document text of a BEIR folder or its corpus.jsonl (the pool for hard-negative mining, dev corpora)."""
    folder = Path(folder)
    corpus = folder if folder.is_file() else folder / "corpus.jsonl"
    texts = (formats.document_text(str(obj.get("title") or ""), str(obj.get("text") or ""))
             for _, obj in json_objects(corpus, Problems("skip"), ("_id",)))
    return [t for t in texts if t]


def read_paraphrase(folder: Path, instruction: str | None = None, task: str | None = None,
                    problems: Problems | None = None) -> list[Record]:
    problems = problems or Problems(hint=SKIP_HINT)
    instruction = instruction or SOURCE_INSTRUCTIONS["paraphrase"]
    files = [folder / name for name in ("a.toks", "b.toks", "sim.txt")]
    columns = [list(lines(f, problems, keep_blank=True)) for f in files]
    if not len(columns[0]) == len(columns[1]) == len(columns[2]):
        raise TrainingError(f"{folder}: a.toks, b.toks and sim.txt have different line counts "
                            f"({', '.join(str(len(c)) for c in columns)})")
    records = []
    for (number, first), (_, second), (_, sim) in zip(*columns):
        if sim.strip() not in ("0", "1"):
            problems.report(files[2], number, f"expected 0 or 1, found {sim!r:.20}")
            continue
        if sim.strip() == "1" and first.strip() and second.strip():
            record = _clean(Record(first.strip(), second.strip(), [], instruction, task or f"paraphrase:{folder.name}"))
            if record is not None:
                records.append(record)
    return records


READERS = {"jsonl": read_jsonl, "beir": read_beir, "sts": read_sts, "qa": read_qa, "paraphrase": read_paraphrase}


def read_source(source: Source, problems: Problems | None = None) -> list[Record]:
    problems = problems or Problems(hint=SKIP_HINT)
    records = READERS[source.kind](source.path, instruction=source.instruction,
                                   task=None if source.kind == "jsonl" else source.task, problems=problems)
    if not records:
        raise TrainingError(f"{source.path}: no usable records ({source.kind} reader)")
    return records


def read_sources(specs: list[str], on_error: str = "raise") -> tuple[list[Record], list[str]]:
    """All records of the given KIND:PATH[::INSTRUCTION] specs, and the skipped-record messages."""
    if not specs:
        raise TrainingError("no training data given")
    problems = Problems(on_error, SKIP_HINT)
    per_source = [(Source.parse(spec), []) for spec in specs]
    for source, records in per_source:
        records += read_source(source, problems)
    paths: dict[str, set[Path]] = {}
    for source, records in per_source:
        for record in records:
            paths.setdefault(record.task, set()).add(source.path)
    # squad/pairs.jsonl and snli/pairs.jsonl are two tasks with their own instructions, never one "jsonl:pairs"
    for source, records in per_source:
        for record in records:
            if len(paths[record.task]) > 1:
                record.task = _folder_task(record.task, source.path)
    return [r for _, records in per_source for r in records], problems.messages


def _folder_task(task: str, path: Path) -> str:
    """'jsonl:pairs' of .../snli/pairs.jsonl -> 'jsonl:snli/pairs': a task name that says where it came from."""
    kind, _, name = task.partition(":")
    folder = (path if path.is_dir() else path.parent).name
    return f"{kind}:{folder}/{name}" if name else f"{folder}/{task}"


def write_jsonl(records: list[Record], path: Path) -> Path:
    """Written aside and renamed into place: an interrupted write leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for record in records:
            f.write(record.to_json() + "\n")
    tmp.replace(path)
    return path


def split_dev(records: list[Record], fraction: float, seed: int = 0,
              salt: str = "train") -> tuple[list[Record], list[Record]]:
    """(train, dev), split by query so no query of the dev set is ever trained on.

    salt: prepare-data and the trainer split with different salts, so the trainer's own hold-out
    from a prepared dev.jsonl does not take every record again.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"dev fraction must be in [0, 1), not {fraction}")
    if fraction == 0:
        return records, []

    def held_out(query: str) -> bool:
        digest = hashlib.sha256(f"{salt}\0{seed}\0{query}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < fraction

    train, dev = [], []
    for record in records:
        (dev if held_out(record.query) else train).append(record)
    if records and not train:
        raise TrainingError(f"holding out {fraction:.0%} of the queries as dev left no training record; "
                            "pass --dev-fraction 0 or a separate --dev")
    return train, dev
