"""Evaluation data read from disk: a BEIR folder, a scored pair file (STS), labelled pairs.

Only the standard library here, so the GPU-side `embed` command can use these readers without
mteb or datasets. Every reader fails with a TrainingError that names the file and line.
"""
from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from training.errors import TrainingError

TASKS = ("retrieval", "sts", "pairs")

# Query-side instructions: mteb's TaskMetadata.prompt for the datasets we have, else the task
# type's default (mteb's abstask_prompt; tests/test_eval_mteb.py checks these still match mteb)
KNOWN_INSTRUCTIONS = {
    "scifact": "Given a scientific claim, retrieve documents that support or refute the claim",
    "stsbenchmark": "Retrieve semantically similar text.",
}
DEFAULT_INSTRUCTIONS = {
    "retrieval": "Retrieve text based on user query.",
    "sts": "Retrieve semantically similar text.",
    "pairs": "Retrieve text that are semantically similar to the given text.",
}


@dataclass
class RetrievalData:
    corpus_ids: list[str]
    titles: list[str]
    texts: list[str]
    query_ids: list[str]
    queries: list[str]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}

    @property
    def documents(self) -> list[str]:
        """What an encoder reads for each document: title and text joined the way mteb joins them."""
        return [document_text(t, x) for t, x in zip(self.titles, self.texts)]


@dataclass
class PairData:
    """STS (scores are graded similarities) or pair classification (scores are 0/1 labels)."""

    first: list[str]
    second: list[str]
    scores: list[float]


def document_text(title: str, text: str) -> str:
    # mirrors mteb._create_dataloaders._corpus_to_dict, so vectors computed without mteb (the GPU
    # `embed` command) are found again when mteb asks for the same documents
    return (title + " " + text).strip() if title else text.strip()


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise TrainingError(f"{path}: no such file")
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise TrainingError(f"{path}: looks binary, not a text file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TrainingError(f"{path}: not valid UTF-8 (byte {exc.start})") from exc


def read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    """JSON objects with the required keys, one per line; errors name the file and line."""
    rows = []
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise TrainingError(f"{path}:{number}: not JSON ({exc})") from exc
        if not isinstance(row, dict) or any(key not in row for key in required):
            raise TrainingError(f"{path}:{number}: a JSON object with {', '.join(required)} is expected")
        rows.append(row)
    if not rows:
        raise TrainingError(f"{path}: empty")
    return rows


def read_beir(folder: str | Path, split: str = "test") -> RetrievalData:
    """corpus.jsonl (_id, title, text), queries.jsonl (_id, text), qrels/SPLIT.tsv (with a header line).

    Only the queries that have a relevant document in the split's qrels are kept, as in BEIR.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise TrainingError(f"{folder}: not a directory (a BEIR folder has corpus.jsonl, queries.jsonl, qrels/)")
    corpus = read_jsonl(folder / "corpus.jsonl", ("_id", "text"))
    queries = {str(q["_id"]): str(q["text"]) for q in read_jsonl(folder / "queries.jsonl", ("_id", "text"))}
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        have = sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        raise TrainingError(f"{qrels_path}: no such file (splits here: {', '.join(have) or 'none'})")
    doc_ids = {str(d["_id"]) for d in corpus}
    qrels: dict[str, dict[str, int]] = {}
    for number, line in enumerate(_read_text(qrels_path).splitlines(), 1):  # splitlines: CRLF too
        fields = line.strip().split("\t")
        if not line.strip() or (number == 1 and not fields[-1].lstrip("-").isdigit()):
            continue  # blank line, or the header
        if len(fields) < 3 or not fields[2].lstrip("-").isdigit():
            raise TrainingError(f"{qrels_path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score'")
        query_id, doc_id, score = fields[0], fields[1], int(fields[2])
        if query_id not in queries:
            raise TrainingError(f"{qrels_path}:{number}: query '{query_id}' is not in queries.jsonl")
        if doc_id not in doc_ids:
            raise TrainingError(f"{qrels_path}:{number}: document '{doc_id}' is not in corpus.jsonl")
        if score > 0:
            qrels.setdefault(query_id, {})[doc_id] = score
    if not qrels:
        raise TrainingError(f"{qrels_path}: no relevant (query, document) pair")
    query_ids = [q for q in queries if q in qrels]
    return RetrievalData(
        corpus_ids=[str(d["_id"]) for d in corpus],
        titles=[str(d.get("title") or "") for d in corpus],
        texts=[str(d["text"]) for d in corpus],
        query_ids=query_ids,
        queries=[queries[q] for q in query_ids],
        qrels=qrels,
    )


def _pair_file(path: Path, split: str, prefixes: tuple[str, ...]) -> Path:
    """A file given directly, or the split's file in a folder (sts-test.csv, test.tsv, test.jsonl...)."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise TrainingError(f"{path}: no such file or directory")
    for prefix in prefixes:
        for ext in (".csv", ".tsv", ".jsonl"):
            candidate = path / f"{prefix}{split}{ext}"
            if candidate.is_file():
                return candidate
    raise TrainingError(f"{path}: no file for split '{split}' (looked for "
                        f"{', '.join(p + split + '.{csv,tsv,jsonl}' for p in prefixes)})")


def read_sts(path: str | Path, split: str = "test") -> PairData:
    """Scored sentence pairs: the STS Benchmark csv, a 3-column TSV, or JSONL (sentence1, sentence2, score).

    STS Benchmark lines are genre, file, year, id, score, sentence1, sentence2 and sometimes extra
    columns (sources): split on tabs with quoting off (sentences contain quote characters).
    """
    return _read_pairs(_pair_file(Path(path), split, ("sts-", "")), "score", float)


def read_pair_labels(path: str | Path, split: str = "test") -> PairData:
    """Labelled pairs (1 paraphrase / 0 not): JSONL (sentence1, sentence2, label), a 3-column TSV, or a
    folder of a.toks / b.toks / sim.txt (the castorini layout of the Twitter URL corpus)."""
    path = Path(path)
    toks = path / split if (path / split / "sim.txt").is_file() else path
    if (toks / "sim.txt").is_file():
        return _read_castorini(toks)
    return _read_pairs(_pair_file(path, split, ("pairs-", "")), "label", _label)


def _label(value: str) -> float:
    if value.strip() not in ("0", "1", "0.0", "1.0"):
        raise ValueError(f"label {value!r} is not 0 or 1")
    return float(value)


def _read_pairs(path: Path, score_key: str, parse) -> PairData:
    first, second, scores = [], [], []
    if path.suffix == ".jsonl":
        for row in read_jsonl(path, ("sentence1", "sentence2")):
            value = row.get(score_key, row.get("score", row.get("label")))
            try:
                scores.append(parse(str(value)))
            except ValueError as exc:
                raise TrainingError(f"{path}: {exc}") from exc
            first.append(str(row["sentence1"]))
            second.append(str(row["sentence2"]))
    else:
        lines = _read_text(path).splitlines()
        for number, fields in enumerate(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if not fields or not "".join(fields).strip():
                continue
            if len(fields) >= 7:  # STS Benchmark layout (extra source columns may follow)
                value, a, b = fields[4], fields[5], fields[6]
            elif len(fields) == 3:
                a, b, value = fields
            else:
                raise TrainingError(f"{path}:{number}: expected 3 tab-separated columns (text1, text2, "
                                    f"{score_key}) or the STS Benchmark layout, got {len(fields)}")
            try:
                scores.append(parse(value))
            except ValueError as exc:
                if number == 1:  # a header line
                    continue
                raise TrainingError(f"{path}:{number}: bad {score_key} {value!r}") from exc
            first.append(a)
            second.append(b)
    if not scores:
        raise TrainingError(f"{path}: no pairs")
    return PairData(first, second, scores)


def _read_castorini(folder: Path) -> PairData:
    a = _read_text(folder / "a.toks").splitlines()
    b = _read_text(folder / "b.toks").splitlines()
    sim = _read_text(folder / "sim.txt").splitlines()
    if not len(a) == len(b) == len(sim):
        raise TrainingError(f"{folder}: a.toks, b.toks and sim.txt differ in length ({len(a)}, {len(b)}, {len(sim)})")
    try:
        labels = [_label(s) for s in sim]
    except ValueError as exc:
        raise TrainingError(f"{folder / 'sim.txt'}: {exc}") from exc
    if not labels:
        raise TrainingError(f"{folder}: no pairs")
    return PairData(a, b, labels)


def read_task(task: str, path: str | Path, split: str = "test") -> RetrievalData | PairData:
    if task == "retrieval":
        return read_beir(path, split)
    if task == "sts":
        return read_sts(path, split)
    if task == "pairs":
        return read_pair_labels(path, split)
    raise TrainingError(f"unknown task '{task}'; one of: {', '.join(TASKS)}")


def data_hash(data: RetrievalData | PairData) -> str:
    """Identifies the evaluated content (not the file bytes: a CRLF/LF change scores the same)."""
    digest = hashlib.sha256()
    if isinstance(data, RetrievalData):
        parts = [data.corpus_ids, data.titles, data.texts, data.query_ids, data.queries,
                 sorted((q, d, s) for q, docs in data.qrels.items() for d, s in docs.items())]
    else:
        parts = [data.first, data.second, data.scores]
    for part in parts:
        digest.update(json.dumps(part, ensure_ascii=False).encode())
    return digest.hexdigest()[:16]


def query_instruction(task: str, data_path: str | Path, instruction: str | None = None) -> str:
    """The instruction queries (and both sides of STS / pairs) get: the given one ("" for none), else
    the dataset's."""
    if instruction is not None:
        return instruction
    return KNOWN_INSTRUCTIONS.get(dataset_name(data_path), DEFAULT_INSTRUCTIONS[task])


def dataset_name(path: str | Path) -> str:
    """'scifact' for .../scifact, 'stsbenchmark' for .../stsbenchmark/sts-test.csv."""
    path = Path(path).resolve()
    return (path.parent.name if path.is_file() else path.name).lower()
