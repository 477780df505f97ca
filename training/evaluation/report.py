"""Readable tables and the committed results file (docs/results/eval-baselines.json)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from training.errors import TrainingError


def table(results: list[dict]) -> str:
    """Models as rows, the task's headline metrics as columns."""
    if not results:
        return "(no results)"
    first = results[0]
    metrics = list(first["headline"])
    header = f"{first['dataset']} ({first['task']}, split {first['split']}; instruction: {first['instruction']!r})"
    width = max(len("model"), *(len(r["model"]) for r in results))
    lines = [header, "  ".join(["model".ljust(width), *(m.rjust(13) for m in metrics), "    seconds"])]
    for r in results:
        cells = [f"{r['headline'][m]:13.4f}" for m in metrics]
        seconds = "cached" if r.get("cached") else f"{r['seconds']:.1f}"
        lines.append("  ".join([r["model"].ljust(width), *cells, f"{seconds:>11}"]))
    return "\n".join(lines)


def record(path: str | Path, results: list[dict]) -> Path:
    """Merge results into {"results": [...]}: one entry per (model, dataset, split, metric), newest wins."""
    path = Path(path)
    entries = []
    if path.exists():
        try:
            entries = json.loads(path.read_text())["results"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TrainingError(f"{path}: not a results file ({exc}); fix or move it, nothing was written") from exc
    for r in results:
        entry = {"model": r["model"], "dataset": r["dataset"], "split": r["split"], "metric": r["metric"],
                 "value": round(float(r["value"]), 5), "device": r["device"], "date": r["date"],
                 "instruction": r["instruction"], "fingerprint": r["fingerprint"]}
        same = (entry["model"], entry["dataset"], entry["split"], entry["metric"])
        entries = [e for e in entries if (e["model"], e["dataset"], e["split"], e["metric"]) != same] + [entry]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"results": entries}, indent=2) + "\n")
    os.replace(tmp, path)
    return path
