"""Training runs started from the UI: the `training` package's Trainer in a background job.

Each step's log entry becomes a point of the loss curve (points.jsonl) and a line of the job log; a
cancel stops after the current step, keeping the checkpoints already written. The finished model
is a checkpoint directory under home()/models/ that the UI offers as the active model.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

from .jobs import Cancelled, JobContext
from .state import AppState, ModelChoice


def models_dir() -> Path:
    from embedder.home import subdir

    return subdir("models")


def trained_models() -> list[str]:
    """Finished checkpoints under home()/models/ (a config.json means the final save happened)."""
    return sorted((str(p) for p in models_dir().iterdir() if (p / "config.json").is_file()), reverse=True)


def run_name(prefix: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", prefix).strip("-")[:40] or "model"
    return f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}"


def trainable_model(choice: ModelChoice):
    """A PromptEmbedder whose Prompting LLM can train, starting from the chosen model.

    A raw backbone (text mode, nothing to train in P) starts a fresh PromptEmbedder on the same
    Embedding LLM; a preset gets trainable Prompting LLM weights (full for the tiny ones, LoRA else).
    """
    from embedder import PromptEmbedder
    from embedder.checkpoint import resolve_model_name

    name = choice.name
    if name and name.startswith("raw:"):
        name = name.split(":")[1]
    target = resolve_model_name(name)
    if isinstance(target, Path):
        model = PromptEmbedder.from_pretrained(target, backbone=choice.backbone)
        if model.prompter is None:
            from training.errors import TrainingError

            raise TrainingError(f"{target} is a text-mode model (LoRA baseline or raw backbone): its Prompting "
                                "LLM cannot train; start from a backbone name instead")
        if model.config.prompter_weights == "base":
            from training.errors import TrainingError

            raise TrainingError(f"{target} keeps the Prompting LLM as shipped; start from its backbone instead")
        return model
    if target.prompting_backbone and target.prompter_weights == "base":
        tiny = target.prompting_backbone.startswith("tiny")
        target.prompter_weights = "full" if tiny else "lora"
        target.prompter_lora = None if tiny else {"r": 8}
    if choice.backbone:
        target.embedding_backbone = choice.backbone
    return PromptEmbedder.from_config(target).to_device(None)


def run_training(ctx: JobContext, state: AppState, data: list[str], steps: int, batch_size: int,
                 start_from: ModelChoice, mode: str = "prompter") -> dict:
    from training.data import read_sources, split_dev
    from training.trainer import Trainer, TrainConfig, latest_checkpoint

    ctx.progress(0, 1, "reading the training data")
    records, skipped = read_sources(data, on_error="skip")
    for message in skipped[:20]:
        ctx.log(f"skipped: {message}")
    train, dev = split_dev(records, 0.05)
    if not train:
        train, dev = records, []
    ctx.log(f"{len(train)} training records, {len(dev)} held out for the dev loss ({len(skipped)} skipped)")
    ctx.progress(0, 1, f"loading {start_from.label}")
    model = trainable_model(start_from)
    output = models_dir() / run_name(f"{start_from.label}-{mode}")
    ctx.result(output=str(output))
    config = TrainConfig(output_dir=str(output), mode=mode, max_steps=steps, batch_size=batch_size,
                         warmup_steps=max(1, min(50, steps // 10)), save_every=max(10, steps // 4),
                         eval_every=max(5, steps // 5), eval_batches=4, query_length=64, document_length=192,
                         progress=False)

    def on_step(step: int, entry: dict) -> None:
        ctx.point(**{k: v for k, v in entry.items() if isinstance(v, (int, float))})
        line = f"step {step}/{steps}  loss {entry['loss']:.4f}  acc {entry['accuracy']:.3f}  lr {entry['lr']:.2e}"
        if "dev_loss" in entry:
            line += f"  dev_loss {entry['dev_loss']:.4f}"
        ctx.log(line + (f"  ({entry['skipped']})" if "skipped" in entry else ""))
        ctx.progress(step, steps, f"step {step}/{steps}, loss {entry['loss']:.4f}")
        try:
            ctx.check()  # cancel between steps: checkpoints already written stay
        except Cancelled:
            saved = latest_checkpoint(output)  # complete checkpoints only, as --resume reads them
            raise Cancelled(f"the checkpoint of step {int(saved.name.split('-')[-1])} is kept in {output}" if saved
                            else "nothing was kept: no checkpoint had been written yet") from None

    ctx.log(f"training {mode} from {start_from.label} for {steps} steps, batch {batch_size} -> {output}")
    Trainer(model, train, config, dev_records=dev, on_step=on_step).train()
    return {"output": str(output), "summary": f"trained {steps} steps; the model is in {output}"}
