"""Training and aligning, for the CLI and the UI: reading the data, the schedule of a short job, the run.

The library's Trainer does the work; here are the pieces both front ends used to build each their own way.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from embedder import PromptEmbedder
from embedder.checkpoint import resolve_model_name
from training.align import attach_backbone
from training.data import Record, read_sources, split_dev
from training.errors import TrainingError
from training.trainer import Trainer, TrainConfig, latest_checkpoint

from .models import ModelChoice, models_dir, run_name, trainable_model
from .progress import Cancelled, Reporter


def read_data(data: Sequence[str], dev: Sequence[str] | None = None, dev_fraction: float = 0.02, seed: int = 0,
              on_error: str = "raise") -> tuple[list[Record], list[Record], list[str]]:
    """(training records, dev records, problems): the dev set read from `dev`, else held out by query."""
    records, problems = read_sources(list(data), on_error)
    if dev:
        dev_records, dev_problems = read_sources(list(dev), on_error)
        return records, dev_records, problems + dev_problems
    records, dev_records = split_dev(records, dev_fraction, seed)
    return records, dev_records, problems


def job_config(output: Path, mode: str, steps: int, batch_size: int, **overrides) -> TrainConfig:
    """The schedule of a training job started from the UI: warm-up, checkpoints and dev scores scaled to its
    steps (a quarter of the run may be lost to a crash at most), no progress bar (the job reports)."""
    settings = dict(output_dir=str(output), mode=mode, max_steps=steps, batch_size=batch_size,
                    warmup_steps=max(1, min(50, steps // 10)), save_every=max(10, steps // 4),
                    eval_every=max(5, steps // 5), eval_batches=4, query_length=64, document_length=192,
                    progress=False)
    return TrainConfig(**{**settings, **overrides})


def trainer(model: PromptEmbedder, records: list[Record], config: TrainConfig, dev: list[Record] | None = None,
            reporter: Reporter | None = None, stage: str = "train", progress_share: float = 1.0) -> Trainer:
    """The Trainer (it selects what trains); with a reporter, each step is a plot point, a log line and progress
    (over progress_share of the job's bar), and a cancel between steps keeps the checkpoints already written."""
    on_step = None if reporter is None else _step_reporter(reporter, config, stage, progress_share)
    return Trainer(model, records, config, dev_records=dev, on_step=on_step)


def train(model: PromptEmbedder, records: list[Record], config: TrainConfig, dev: list[Record] | None = None,
          reporter: Reporter | None = None, stage: str = "train", progress_share: float = 1.0) -> Path:
    """Train to the end; the run directory."""
    return trainer(model, records, config, dev, reporter, stage, progress_share).train()


def _step_reporter(reporter: Reporter, config: TrainConfig, stage: str, share: float):
    steps, output = config.max_steps, Path(config.output_dir)

    def on_step(step: int, entry: dict) -> None:
        reporter.point(stage=stage, **{k: v for k, v in entry.items() if isinstance(v, (int, float))})
        line = f"{stage} step {step}/{steps}  loss {entry['loss']:.4f}  acc {entry['accuracy']:.3f}  lr {entry['lr']:.2e}"
        if "dev_loss" in entry:
            line += f"  dev_loss {entry['dev_loss']:.4f}"
        reporter.log(line + (f"  ({entry['skipped']})" if "skipped" in entry else ""))
        reporter.progress(share * step / steps, 1, f"{stage} step {step}/{steps}, loss {entry['loss']:.4f}")
        try:
            reporter.check()
        except Cancelled:
            saved = latest_checkpoint(output)  # complete checkpoints only, as --resume reads them
            raise Cancelled(f"the checkpoint of step {int(saved.name.split('-')[-1])} is kept in {output}" if saved
                            else "nothing was kept: no checkpoint had been written yet") from None

    return on_step


def train_job(reporter: Reporter, data: list[str], steps: int, batch_size: int, start_from: ModelChoice,
              mode: str = "prompter") -> dict:
    """A training run started from the UI: data held out 5% for dev, the job schedule, the model under
    models_dir()."""
    reporter.progress(0, 1, "reading the training data")
    records, dev, skipped = read_data(data, dev_fraction=0.05, on_error="skip")
    for message in skipped[:20]:
        reporter.log(f"skipped: {message}")
    reporter.log(f"{len(records)} training records, {len(dev)} held out for the dev loss ({len(skipped)} skipped)")
    reporter.progress(0, 1, f"loading {start_from.label}")
    model = trainable_model(start_from)
    output = models_dir() / run_name(f"{start_from.label}-{mode}")
    reporter.result(output=str(output))
    reporter.log(f"training {mode} from {start_from.label} for {steps} steps, batch {batch_size} -> {output}")
    train(model, records, job_config(output, mode, steps, batch_size), dev, reporter)
    return {"output": str(output), "summary": f"trained {steps} steps; the model is in {output}"}


def adapt(reporter: Reporter, model: PromptEmbedder, choice: ModelChoice, target: str, data: list[str], steps: int,
          batch_size: int = 16) -> tuple[ModelChoice, str]:
    """(the model choice running on the target Embedding LLM, what was done): a raw backbone is renamed, a
    checkpoint with an alignment for the target loads with it, else a new alignment trains (P frozen)."""
    if model.embedding.name == target:
        raise ValueError(f"the active model already runs on {target}; pick another backbone")
    if model.prompter is None:
        if choice.name and choice.name.startswith("raw:"):
            pooling = choice.name.split(":")[2] if choice.name.count(":") >= 2 else "mean"
            return ModelChoice(f"raw:{target}:{pooling}"), "raw backbone: nothing to align, the new backbone is used as is"
        raise TrainingError(f"{choice.label} is a LoRA baseline: its adapter belongs to its backbone and cannot move")
    if isinstance(resolve_model_name(choice.name), Path) and target in model.config.aligned_backbones:
        return ModelChoice(choice.name, target), f"the checkpoint already has an alignment for {target}: training skipped"
    if not data:
        raise ValueError("alignment training needs data (KIND:PATH lines, e.g. jsonl:pairs.jsonl)")
    records, _, _ = read_data(data, dev_fraction=0, on_error="skip")
    # a batch never holds the same text twice (false negatives): small data sets need smaller batches
    batch_size = max(2, min(batch_size, len({r.positive for r in records})))
    reporter.log(f"aligning {choice.label} to {target}: {len(records)} records, {steps} steps of batch {batch_size} "
                 "(only the alignment trains)")
    # a copy to train: the active one keeps serving
    copy = PromptEmbedder.from_pretrained(choice.name, backbone=choice.backbone, merge_lora=False)
    attach_backbone(copy, target)
    output = models_dir() / run_name(f"{choice.label}-{target}")
    # shorter documents than a training job's: an alignment on a new backbone is the slow part of a swap
    config = job_config(output, "alignment", steps, batch_size, save_every=0, document_length=128)
    train(copy, records, config, reporter=reporter, stage="align", progress_share=0.4)
    return ModelChoice(str(output)), f"trained a new alignment for {target} ({steps} steps) -> {output}"
