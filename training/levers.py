"""`bench levers`: training runs side by side, to choose the default model's settings on dev scores.

Per run directory: the settings that differ between the runs (training_args.json and the model's
config.json, detected automatically), steps, training seconds (the sum of the logged step times,
without evaluation), peak memory, and from train_log.jsonl the final dev scores and the best
dev/score with its step.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from .dev_score import metric_label
from .errors import TrainingError
from .trainer import LOG_FILE, latest_checkpoint, read_log

IGNORED = {"output_dir", "progress", "aligned_backbones"}  # differ between any two runs, or bookkeeping
MISSING = "–"


def read_run(path: str | Path) -> dict:
    run = Path(path)
    log = run / LOG_FILE
    if not log.is_file():
        raise TrainingError(f"{run}: no {LOG_FILE} here; expected a run directory of train, train-lora or align")
    entries = read_log(log)
    evaluated = [e for e in entries if "dev/score" in e]
    best = max(evaluated, key=lambda e: e["dev/score"], default=None)
    step_times = [e["step_s"] for e in entries if "step_s" in e]
    return {
        "run": str(run), "settings": _settings(run), "steps": entries[-1]["step"] if entries else 0,
        "train_s": round(sum(step_times), 1),
        "median_step_s": statistics.median(step_times) if step_times else None,
        "dev_s": round(sum(e.get("dev_s", 0.0) for e in entries), 1),
        "peak_memory_bytes": max((e.get("peak_memory_bytes", 0) for e in entries), default=0),
        "final": {k: v for k, v in (evaluated[-1] if evaluated else {}).items() if k.startswith("dev/")},
        "best_score": best["dev/score"] if best else None, "best_step": best["step"] if best else None,
    }


def _settings(run: Path) -> dict:
    """The saved train config, then the model config (from the run's end, else its latest checkpoint)."""
    settings = {}
    checkpoint = latest_checkpoint(run)
    model_config = run / "config.json" if (run / "config.json").is_file() else (
        checkpoint / "config.json" if checkpoint else None)
    for path in (run / "training_args.json", model_config):
        if path is not None and path.is_file():
            for key, value in json.loads(path.read_text()).items():
                settings[key if key not in settings else f"model.{key}"] = value
    return {k: v for k, v in settings.items() if k not in IGNORED}


def differing_settings(runs: list[dict]) -> list[str]:
    keys = dict.fromkeys(k for run in runs for k in run["settings"])
    return [k for k in keys if len({_comparable(run["settings"].get(k)) for run in runs}) > 1]


def _comparable(value) -> str:
    # a run from before a setting existed lacks it; one after writes its empty default ("", {}): the same run
    return json.dumps(None if value in ("", {}, []) else value, sort_keys=True)


def _value(value) -> str:
    if value is None:
        return MISSING
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        value = json.dumps(value, separators=(",", ":"))
    return str(value).replace("|", "\\|") if value != "" else '""'  # a pipe would split the markdown cell


def seconds_text(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


def memory_text(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def _metric_name(key: str) -> str:
    return " ".join(metric_label(key))  # 'beir:scifact ndcg@10'


def levers_table(runs: list[dict]) -> str:
    """A markdown table, one row per run."""
    names = [Path(r["run"]).name for r in runs]
    if len(set(names)) < len(names):
        names = [r["run"] for r in runs]
    settings = differing_settings(runs)
    metrics = list(dict.fromkeys(k for r in runs for k in r["final"] if k != "dev/score"))
    header = ["run", *settings, "steps", "train time", "peak mem", "dev/score", "best dev/score (step)",
              *map(_metric_name, metrics)]
    rows = []
    for name, run in zip(names, runs):
        final = run["final"]
        best = f"{run['best_score']:.4f} ({run['best_step']})" if run["best_score"] is not None else MISSING
        rows.append([name, *(_value(run["settings"].get(k)) for k in settings), str(run["steps"]),
                     seconds_text(run["train_s"]), memory_text(run["peak_memory_bytes"]),
                     f"{final['dev/score']:.4f}" if "dev/score" in final else MISSING, best,
                     *(f"{final[k]:.4f}" if k in final else MISSING for k in metrics)])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
