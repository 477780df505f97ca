"""Which model a command or the UI runs: the default, a named one, a trainable start, and where trained ones go."""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import embedder  # its names load lazily: the CLI's start-up imports this module, torch only when a model loads
from embedder.checkpoint import resolve_model_name, shipped_model
from embedder.home import subdir
from training.errors import TrainingError

if TYPE_CHECKING:
    from embedder import PromptEmbedder

# what runs while no trained model is shipped: the raw CPU backbone, which needs no training
FALLBACK_MODEL = "raw:smollm2-135m:mean"
FALLBACK_NOTE = (
    f"No trained model is shipped yet (assets/default-model is missing), so this runs the raw SmolLM2-135M "
    f"backbone with mean pooling ({FALLBACK_MODEL}), an untrained baseline: expect rough rankings. Train one "
    "(the UI's Training tab, or `promptembedder train`), or pass --model.")


def model_or_default(name: str | None) -> tuple[str | None, str]:
    """(the model to load, a note for the user) for a --model value.

    A named model is itself. None or "default" is the shipped trained model (returned as None, which
    from_pretrained loads on the backbone that fits the machine), or while none is shipped the raw
    SmolLM2 baseline, with a note saying so. The CLI, the UI and the demo all default through here.
    """
    if name not in (None, "default"):
        return name, ""
    if shipped_model() is not None:
        return None, ""
    return FALLBACK_MODEL, FALLBACK_NOTE


@dataclass
class ModelChoice:
    name: str | None  # what PromptEmbedder.from_pretrained takes (None: the shipped default)
    backbone: str | None = None

    @property
    def label(self) -> str:
        name = self.name or "default model"
        if os.sep in name:  # a checkpoint directory: its folder name says enough
            name = Path(name).name
        return f"{name} @ {self.backbone}" if self.backbone else name

    def as_dict(self) -> dict:
        return {"name": self.name, "backbone": self.backbone}


def models_dir() -> Path:
    """Where models trained from the UI go."""
    return subdir("models")


def trained_models() -> list[str]:
    """Finished checkpoints under models_dir() (a config.json means the final save happened), newest first."""
    return sorted((str(p) for p in models_dir().iterdir() if (p / "config.json").is_file()), reverse=True)


def run_name(prefix: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", prefix).strip("-")[:40] or "model"
    return f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}"


def trainable_model(choice: ModelChoice) -> PromptEmbedder:
    """A PromptEmbedder whose Prompting LLM can train, starting from the chosen model.

    A raw backbone (text mode, nothing to train in P) starts a fresh PromptEmbedder on the same
    Embedding LLM; a preset gets trainable Prompting LLM weights (full for the tiny ones, LoRA else).
    """
    name = choice.name
    if name and name.startswith("raw:"):
        name = name.split(":")[1]
    target = resolve_model_name(name)
    if isinstance(target, Path):
        model = embedder.PromptEmbedder.from_pretrained(target, backbone=choice.backbone, merge_lora=False)
        if model.prompter is None:
            raise TrainingError(f"{target} is a text-mode model (LoRA baseline or raw backbone): its Prompting "
                                "LLM cannot train; start from a backbone name instead")
        if model.config.prompter_weights == "base":
            raise TrainingError(f"{target} keeps the Prompting LLM as shipped; start from its backbone instead")
        return model
    if target.prompting_backbone and target.prompter_weights == "base":
        tiny = target.prompting_backbone.startswith("tiny")
        target.prompter_weights = "full" if tiny else "lora"
        target.prompter_lora = None if tiny else {"r": 8}
    if choice.backbone:
        target.embedding_backbone = choice.backbone
    return embedder.PromptEmbedder.from_config(target).to_device(None)
