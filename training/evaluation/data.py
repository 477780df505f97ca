"""Evaluation data read from disk: a BEIR folder, a scored pair file (STS), labelled pairs.

The formats are read by training/formats.py (one reader each, shared with training); here is what the
evaluation adds: finding a split's file, pair labels, a content hash, the instruction per dataset.
Every reader fails with a TrainingError that names the file and line.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from training.errors import TrainingError
from training.formats import PairData, Problems, RetrievalData, json_objects, lines, read_beir, read_pairs
from training.instructions import DATASET_INSTRUCTIONS, TASK_INSTRUCTIONS

TASKS = ("retrieval", "sts", "pairs")


def read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    """JSON objects with the required keys, one per line; errors name the file and line."""
    rows = [row for _, row in json_objects(Path(path), Problems(), required)]
    if not rows:
        raise TrainingError(f"{path}: empty")
    return rows


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
    """Scored sentence pairs: the STS Benchmark csv, a 3-column TSV, or JSONL (sentence1, sentence2, score)."""
    return read_pairs(_pair_file(Path(path), split, ("sts-", "")), "score", float)


def read_pair_labels(path: str | Path, split: str = "test") -> PairData:
    """Labelled pairs (1 paraphrase / 0 not): JSONL (sentence1, sentence2, label), a 3-column TSV, or a
    folder of a.toks / b.toks / sim.txt (the castorini layout of the Twitter URL corpus)."""
    path = Path(path)
    toks = path / split if (path / split / "sim.txt").is_file() else path
    if (toks / "sim.txt").is_file():
        return _read_castorini(toks)
    return read_pairs(_pair_file(path, split, ("pairs-", "")), "label", _label)


def _label(value: str) -> float:
    if value.strip() not in ("0", "1", "0.0", "1.0"):
        raise ValueError(f"label {value!r} is not 0 or 1")
    return float(value)


def _read_castorini(folder: Path) -> PairData:
    a, b, sim = ([text for _, text in lines(folder / name, Problems(), keep_blank=True)]
                 for name in ("a.toks", "b.toks", "sim.txt"))
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
    return DATASET_INSTRUCTIONS.get(dataset_name(data_path), TASK_INSTRUCTIONS[task])


def dataset_name(path: str | Path) -> str:
    """'scifact' for .../scifact, 'stsbenchmark' for .../stsbenchmark/sts-test.csv."""
    path = Path(path).resolve()
    return (path.parent.name if path.is_file() else path.name).lower()
