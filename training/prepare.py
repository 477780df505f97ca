"""Preparation (CPU side): raw sources -> shuffled train/dev JSONL with BM25 hard negatives.

Uses `datasets` (seeded shuffling) and `bm25s` (mining), both imported
here only; the trainer reads the JSONL this writes with the standard library, so the GPU machine
needs neither.
"""
from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from .data import Record, Source, read_beir_corpus, read_sources, split_dev, write_jsonl
from .mining import mine_hard_negatives


def prepare_data(specs: list[str], output: Path, hard_negatives: int = 1, dev_fraction: float = 0.02,
                 seed: int = 0, on_error: str = "raise", skip_top: int = 0,
                 show_progress: bool = False) -> dict:
    """Writes output/train.jsonl and output/dev.jsonl; returns a summary (also in summary.json)."""
    if output.exists() and not output.is_dir():  # said before the reading and mining, not after
        raise FileExistsError(f"--output {output} is a file; give a folder for train.jsonl, dev.jsonl, summary.json")
    records, problems = read_sources(specs, on_error)
    pools = {}
    for spec in specs:
        source = Source.parse(spec)
        if source.kind == "beir":
            pools[source.task] = read_beir_corpus(source.path)
    mine_hard_negatives(records, hard_negatives, pools, skip_top=skip_top, show_progress=show_progress)
    train, dev = split_dev(records, dev_fraction, seed, salt="prepare")
    train = _shuffled(train, seed)
    output.mkdir(parents=True, exist_ok=True)
    write_jsonl(train, output / "train.jsonl")
    write_jsonl(dev, output / "dev.jsonl")
    summary = {
        "sources": specs, "train_records": len(train), "dev_records": len(dev),
        "tasks": dict(Counter(r.task for r in train)),
        "with_negatives": sum(1 for r in train if r.negatives),
        "skipped_malformed": len(problems), "problems": problems[:20],
    }
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _shuffled(records: list[Record], seed: int) -> list[Record]:
    """A seeded shuffle through `datasets` (the order the trainer's mixture then reshuffles per epoch)."""
    try:
        import datasets
    except ImportError:  # a machine without it still prepares, with the standard library's shuffle

        records = records[:]
        random.Random(seed).shuffle(records)
        return records
    table = datasets.Dataset.from_list([vars(r) for r in records]).shuffle(seed=seed)
    return [Record(**row) for row in table]
