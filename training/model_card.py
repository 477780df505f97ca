"""The model card (README.md) of a trained checkpoint, written from what the checkpoint, its training
runs and the evaluation results record; nothing is estimated or filled in.

    promptembedder model-card --model assets/default-model --results docs/results/eval-default.json \\
        --run pe=runs/pe --run align-smollm2=runs/pe-smollm2 --hardware "1x NVIDIA H100 80GB"

`results_table` renders the results alone, for the README and docs/benchmarks.md.
"""
from __future__ import annotations

import json
from pathlib import Path

from embedder.backbones import BACKBONES
from embedder import checkpoint as checkpoints
from embedder.checkpoint import pick_backbone, read_config

from .errors import TrainingError
from .levers import memory_text, read_run as read_run_figures, seconds_text

# (column, dataset, metric) of the results table; all on the test split
RESULT_COLUMNS = [("SciFact nDCG@10", "scifact", "ndcg_at_10"), ("STS-B Spearman", "stsbenchmark", "spearman")]
RESULT_SPLIT = "test"
RESULT_KEYS = ("model", "dataset", "split", "metric", "value")
# what the shipped model is trained on (from each folder's SOURCE.txt); twitter-url is non-commercial: left out
TRAINING_DATA = """\
| data | what | part used | license |
|---|---|---|---|
| SQuAD v1.1 train | Wikipedia questions -> the paragraph that answers them | 37,461 question -> paragraph pairs (at most 2 per paragraph) | CC BY-SA 4.0 |
| Natural Questions train (via QED) | real search queries -> Wikipedia answer paragraphs | 7,167 pairs (NQ dev, BEIR NQ's test, not included) | CC BY-SA 3.0 |
| SNLI (dev + test + 1% of train) | premise -> entailed hypothesis, 6k with a contradiction as negative | 8,266 pairs; held-out STS/SICK sentences filtered out | CC BY-SA 4.0 |
| arXiv metadata, 2007-2017 (non-CS) and 2025-26 (CS) | paper title -> abstract | 30,000 + 15,000 pairs | arXiv metadata policy: reuse allowed, commercial too |
| MedQuAD (github.com/abachaa/MedQuAD) | 16,407 medical question-answer pairs from NIH websites | question -> answer pairs | CC BY 4.0 |
| SciFact (BEIR format) | scientific claims and the abstracts that support or refute them (5,183 abstracts; 809 train claims, 919 train qrels) | train claims and qrels only; the 300 test claims are the evaluation | claims and annotations CC BY 4.0; abstracts (S2ORC) ODC-By 1.0 |
| STS Benchmark | sentence pairs scored 0-5 for similarity | sts-train.csv, pairs scoring >= 4; sts-dev.csv for dev scores; sts-test.csv is the evaluation | scores CC BY-SA 4.0; each text source has its own license (MSR Paraphrase and MSR Video: Microsoft Research terms; news headlines: EMM; see the dataset's LICENSE.txt) |

2% of the queries of each set are held out as dev records (`prepare-data --dev-fraction 0.02`); BM25 hard
negatives are mined per set (`--hard-negatives 1 --skip-top 1`). Not used: the Twitter URL paraphrase corpus
(CC BY-NC-SA 3.0, non-commercial) and SQuADShifts (no license stated).
"""
# run settings shown per run (training_args.json), in this order
RUN_SETTINGS = ["mode", "init_from", "max_steps", "batch_size", "grad_accum", "lr", "alignment_lr", "warmup_steps",
                "min_lr_ratio", "weight_decay", "max_grad_norm", "temperature", "learnable_temperature",
                "hard_negatives", "task_weights", "query_length", "document_length", "tau_start", "tau_end",
                "cached_text", "text_reuse", "reuse_block", "dtype", "bf16", "seed"]
# settings a run's mode records but never uses: alignment keeps P frozen at its checkpoint's tau and trains only
# the alignment (at alignment_lr), so P's learning rate and the Gumbel anneal would read as if they applied
UNUSED_BY_MODE = {"alignment": {"lr", "tau_start", "tau_end"}}
MODEL_SETTINGS = ["num_soft_tokens", "placement", "pooling", "soft_token_source", "straight_through",
                  "gumbel_tau", "deep_rank", "prompter_weights", "prompter_lora", "max_length", "query_instruction",
                  "document_instruction"]


# ----- results --------------------------------------------------------------------------------
def read_results(path: str | Path) -> list[dict]:
    """The entries of a results file ({"results": [...]}, as `promptembedder eval --record` writes)."""
    path = Path(path)
    if not path.is_file():
        raise TrainingError(f"results file {path} not found; score the model first, e.g. `promptembedder eval "
                            f"--model DIR --data ../shared/data/scifact --record {path}`")
    try:
        entries = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrainingError(f"{path}: not a results file ({exc}); expected {{\"results\": [...]}}") from exc
    if not isinstance(entries, list):
        raise TrainingError(f"{path}: \"results\" must be a list")
    for i, entry in enumerate(entries):
        missing = [k for k in RESULT_KEYS if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise TrainingError(f"{path}: results[{i}] lacks {', '.join(missing)}")
        if not isinstance(entry["value"], (int, float)):
            raise TrainingError(f"{path}: results[{i}] value {entry['value']!r} is not a number")
    return entries


def results_table(results: list[dict]) -> str:
    """Markdown: one row per model (in the order they first appear), test-split scores, "n/a" where missing."""
    rows: dict[str, dict] = {}
    for r in results:
        row = rows.setdefault(r["model"], {"devices": []})
        if r["split"] == RESULT_SPLIT:
            row[(r["dataset"], r["metric"])] = r["value"]
            if r.get("device") and r["device"] not in row["devices"]:
                row["devices"].append(r["device"])
    lines = ["| model | " + " | ".join(c for c, _, _ in RESULT_COLUMNS) + " | device |",
             "|---|" + "---:|" * len(RESULT_COLUMNS) + "---|"]
    for model, row in rows.items():
        cells = [_score(row.get((dataset, metric))) for _, dataset, metric in RESULT_COLUMNS]
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {', '.join(row['devices']) or 'n/a'} |")
    return "\n".join(lines) + "\n"


def _score(value) -> str:
    return "n/a" if value is None else f"{float(value):.3f}"


# ----- training runs --------------------------------------------------------------------------
def read_run(name: str, directory: str | Path) -> dict:
    """levers.read_run's figures of a run directory (settings, steps, time, peak memory, final dev scores),
    plus its name and the device its training_args.json records, if any."""
    run = read_run_figures(directory)
    device = run["settings"].get("device")
    return {**run, "name": name, "devices": [str(device)] if device else []}


# ----- the card -------------------------------------------------------------------------------
def model_card(checkpoint: str | Path, results_path: str | Path, runs: dict[str, str | Path] | None = None,
               hardware: str | None = None, data_summary: str | Path | None = None) -> str:
    """The markdown model card of a checkpoint (data_summary: prepare-data's summary.json, for record counts)."""
    checkpoint = Path(checkpoint)
    config = read_config(checkpoint)
    results = read_results(results_path)
    runs = [read_run(name, path) for name, path in (runs or {}).items()]
    if not hardware and not any(run["devices"] for run in runs):
        raise TrainingError("the training logs record no device: say what the model was trained on with "
                            "--hardware, e.g. --hardware '1x NVIDIA H100 80GB, 16 CPU cores'")
    shipped = checkpoint.resolve() == checkpoints.DEFAULT_MODEL_DIR.resolve()  # read late: tests move it
    load = "" if shipped else f'"{checkpoint}"'
    cli_model = "" if shipped else f" --model {checkpoint}"
    gpu, cpu = config.embedding_backbone, pick_backbone(config, cuda=False)

    out = [f"# PromptEmbedder: {checkpoint.name}", ""]
    out += [
        "A text embedding model for retrieval and similarity. A small trainable **Prompting LLM** turns the task "
        "instruction into soft tokens; a trained linear alignment maps them into a frozen **Embedding LLM**, which "
        "reads them with the text and gives the embedding (unit vectors: cosine similarity is the dot product). "
        "The Embedding LLMs are never changed, so one checkpoint runs on each backbone it has an alignment for.",
        "",
        f"Without `backbone=` it runs on **{gpu}** on a CUDA machine and on **{cpu}** on a CPU-only one.", "",
        "## Use", "", "```python", "from embedder import PromptEmbedder", "",
        f"model = PromptEmbedder.from_pretrained({load})  # or backbone=\"{_other(config, gpu)}\"",
        'queries = model.encode(["does vitamin D prevent fractures?"],',
        '                       instruction="Given a scientific claim, retrieve abstracts that support or refute it")',
        'docs = model.encode_document(["Vitamin D supplementation did not reduce fracture risk ..."])',
        "scores = queries @ docs.T", "```", "", "```bash",
        f'promptembedder encode{cli_model} "some text" "another"',
        f"promptembedder index ~/papers --collection papers{cli_model} --instruction \"Given a claim, find evidence\"",
        'promptembedder search "vitamin D and fractures" --collection papers',
        f"promptembedder serve{cli_model}",
        f"promptembedder encode{cli_model} --backbone {_other(config, gpu)} \"some text\"",
        "```", "",
        "## Backbones", "",
        _backbone_table(config, BACKBONES), "",
        "## Model settings", "", "| setting | value |", "|---|---|",
        *(f"| {key} | {_cell(getattr(config, key))} |" for key in MODEL_SETTINGS), "",
    ]
    out += _training_section(runs, hardware)
    out += ["## Training data", "", TRAINING_DATA, *_data_counts(data_summary),
            "## Results", "",
            f"Scores on the {RESULT_SPLIT} splits, from `{results_path}` (`promptembedder eval --record`); "
            "n/a: not measured.", "", results_table(results)]
    return "\n".join(out)


def _data_counts(path: str | Path | None) -> list[str]:
    """Training records per task, as `promptembedder prepare-data` counted them."""
    if path is None:
        return []
    try:
        summary = json.loads(Path(path).read_text())
        tasks, sources = summary["tasks"], summary["sources"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TrainingError(f"{path}: not a prepare-data summary.json ({exc})") from exc
    lines = [f"Training records per task (`promptembedder prepare-data`, {summary.get('train_records', 'n/a')} "
             f"training and {summary.get('dev_records', 'n/a')} dev records in all; sources: "
             + ", ".join(f"`{s}`" for s in sources) + "):", "", "| task | records |", "|---|---:|"]
    return lines + [f"| {task} | {count} |" for task, count in tasks.items()] + [""]


def _other(config, gpu: str) -> str:
    """An example backbone for `backbone=`: another aligned one when there is one."""
    return next((b for b in config.aligned_backbones if b != gpu), gpu)


def _backbone_table(config, registry: dict) -> str:
    lines = ["| role | backbone | architecture | parameters | license | package |", "|---|---|---|---|---|---|"]

    def row(role: str, name: str) -> str:
        b = registry.get(name)
        if b is None:
            return f"| {role} | {name} | n/a | n/a | n/a | n/a |"
        return f"| {role} | {name} | {b.arch}, {b.hidden_size} x {b.layers} | {b.params} | {b.license} | " \
               f"{', '.join(b.packages) or 'built in'} |"

    if config.prompting_backbone:
        lines.append(row(f"Prompting LLM (weights: {config.prompter_weights})", config.prompting_backbone))
    on_cuda = "default on CUDA" if config.cpu_backbone else "default"  # no CPU backbone: it is used everywhere
    for name in config.aligned_backbones or [config.embedding_backbone]:
        uses = [u for u, b in ((on_cuda, config.embedding_backbone), ("default on CPU", config.cpu_backbone))
                if b == name]
        lines.append(row("Embedding LLM" + (f" ({', '.join(uses)})" if uses else ""), name))
    return "\n".join(lines)


def _training_section(runs: list[dict], hardware: str | None) -> list[str]:
    if not runs:
        return ["## Training", "", f"Hardware: {hardware}. No training runs were given (--run).", ""]
    names = [run["name"] for run in runs]
    out = ["## Training", "", "Each run trains only the Prompting LLM and the alignment (`prompter`), or only a new "
           "alignment into another Embedding LLM (`alignment`); the Embedding LLMs stay frozen.", "",
           "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(runs)]
    for key in ["embedding_backbone", *RUN_SETTINGS]:
        out.append(f"| {key} | " + " | ".join(_setting_cell(run, key) for run in runs) + " |")
    out += ["", "| run | hardware | steps | training time | median step | peak memory | final dev/score |",
            "|---|---|---:|---:|---:|---:|---:|"]
    for run in runs:
        median = "n/a" if run["median_step_s"] is None else f"{run['median_step_s']:.1f} s"
        out.append(f"| {run['name']} | {', '.join(run['devices']) or hardware} | {run['steps']} | "
                   f"{seconds_text(run['train_s'])} | {median} | {memory_text(run['peak_memory_bytes'])} | "
                   f"{_score(run['final'].get('dev/score'))} |")
    out += ["", "Training time: the sum of the logged step times (model loading, dev evaluation and checkpoint saves "
            "excluded; a step that shared the machine with other work, or was paused, counts as long as it took: the "
            "median step shows the undisturbed pace). Peak memory: the largest `peak_memory_bytes` logged, memory "
            "allocated by torch on a GPU run, the process's peak resident size on a CPU run. dev/score: the run's "
            "last dev evaluation. \"unused\": a setting the run records but its mode does not apply.", ""]
    return out


def _setting_cell(run: dict, key: str) -> str:
    mode = run["settings"].get("mode")
    return f"unused ({mode})" if key in UNUSED_BY_MODE.get(mode, ()) else _cell(run["settings"].get(key))


def _cell(value) -> str:
    if value is None:
        return "n/a"
    text = json.dumps(value) if isinstance(value, (dict, list, bool)) else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def write_model_card(checkpoint: str | Path, results_path: str | Path, runs: dict[str, str | Path] | None = None,
                     hardware: str | None = None, data_summary: str | Path | None = None,
                     output: str | Path | None = None) -> Path:
    """Write the card (default: CHECKPOINT/README.md) and return its path."""
    text = model_card(checkpoint, results_path, runs, hardware, data_summary)
    output = Path(output) if output else Path(checkpoint) / "README.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    return output
