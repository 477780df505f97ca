"""The three things the trainer can train, each a small object (PEFT-style: one method, its trainable
parameters, its prompts and its train mode), so the Trainer is one loop that never asks which it runs.

- PrompterTraining ("prompter"): the Prompting LLM (full or its LoRA adapters, per the model config) and
  the alignment; the paper's method.
- AlignmentTraining ("alignment"): only a new alignment; P frozen and deterministic, its output cached per
  instruction (moving to a new Embedding LLM).
- LoraTraining ("lora"): only LoRA adapters on the Embedding LLM, the instruction written as text (the
  baseline).
The Embedding LLM's own weights never train. A run's TrainConfig.mode names its method (checkpoints keep it).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from embedder.model import PromptEmbedder, SoftPrompt

from .errors import TrainingError

if TYPE_CHECKING:  # annotations only: the trainer imports this module
    from .trainer import TrainConfig


class TrainingMethod:
    """What the methods share unless they say otherwise: the whole model in train mode, nothing to do per step,
    both sides' prompts from one batched pass of P (none in text mode)."""

    name = ""

    def prepare(self, model: PromptEmbedder, config: TrainConfig) -> None:
        pass

    def parameter_groups(self, model: PromptEmbedder, config: TrainConfig) -> list[dict]:
        raise NotImplementedError

    def train_mode(self, model: PromptEmbedder) -> None:
        model.train()

    def begin_step(self, model: PromptEmbedder, step: int, config: TrainConfig) -> None:
        pass

    def soft_prompts(self, model: PromptEmbedder, instructions: list[str]) -> dict[str, SoftPrompt | None]:
        return model.soft_prompts(instructions)

    def _require_prompter(self, model: PromptEmbedder) -> None:
        if model.prompter is None:
            raise TrainingError(f"mode '{self.name}' needs a Prompting LLM; this model is in text mode")


class PrompterTraining(TrainingMethod):
    name = "prompter"

    def prepare(self, model: PromptEmbedder, config: TrainConfig) -> None:
        self._require_prompter(model)
        model.config.gumbel_tau = config.tau_end  # the saved model runs where the anneal ends (noise-free)

    def parameter_groups(self, model: PromptEmbedder, config: TrainConfig) -> list[dict]:
        weights = model.config.prompter_weights
        if weights == "base":
            raise TrainingError("prompter_weights 'base' keeps the Prompting LLM as shipped; train it with 'full' or 'lora'")
        prompter = [p for n, p in model.prompter.lm.named_parameters() if weights == "full" or "lora_" in n]
        return [dict(params=prompter, lr=config.lr, weight_decay=config.weight_decay), _alignment_group(model, config)]

    def begin_step(self, model: PromptEmbedder, step: int, config: TrainConfig) -> None:
        model.set_gumbel_tau(tau_at(step, config))


class AlignmentTraining(TrainingMethod):
    name = "alignment"

    def __init__(self):
        self._frozen: dict[str, torch.Tensor] = {}  # P's output by instruction

    def prepare(self, model: PromptEmbedder, config: TrainConfig) -> None:
        self._require_prompter(model)  # the checkpoint's tau stays: P's frozen output is what inference sees

    def parameter_groups(self, model: PromptEmbedder, config: TrainConfig) -> list[dict]:
        return [_alignment_group(model, config)]

    def train_mode(self, model: PromptEmbedder) -> None:
        model.train()
        model.prompter.eval()  # frozen P: its inference-time output, no Gumbel noise

    def soft_prompts(self, model: PromptEmbedder, instructions: list[str]) -> dict[str, SoftPrompt | None]:
        missing = [text for text in dict.fromkeys(instructions) if text not in self._frozen]
        if missing:
            with torch.no_grad():
                self._frozen.update(zip(missing, model.generate_soft_tokens(missing).unbind(0)))
        return {text: model.alignment(self._frozen[text]) for text in instructions}


class LoraTraining(TrainingMethod):
    name = "lora"  # text mode: the instruction is text, no soft prompts

    def prepare(self, model: PromptEmbedder, config: TrainConfig) -> None:
        if model.config.embedding_lora is None:
            raise TrainingError("mode 'lora' needs a model with an Embedding LLM adapter (train-lora builds one)")

    def parameter_groups(self, model: PromptEmbedder, config: TrainConfig) -> list[dict]:
        adapters = [p for n, p in model.embedding.lm.named_parameters() if "lora_" in n]
        for p in adapters:
            p.data = p.data.float()  # adapters and their AdamW state in fp32 over a bf16 E; bf16 ones are fragile
        return [dict(params=adapters, lr=config.lr, weight_decay=config.weight_decay)]


def tau_at(step: int, config: TrainConfig) -> float:
    """Geometric annealing from tau_start to tau_end over the run."""
    fraction = step / max(1, config.max_steps - 1)
    return config.tau_start * (config.tau_end / config.tau_start) ** fraction


METHODS = {method.name: method for method in (PrompterTraining, AlignmentTraining, LoraTraining)}


def _alignment_group(model: PromptEmbedder, config: TrainConfig) -> dict:
    return dict(params=list(model.alignment.parameters()), lr=config.alignment_lr, weight_decay=0.0)


def select_trainable(model: PromptEmbedder, config: TrainConfig, method: TrainingMethod | None = None) -> list[dict]:
    """Turn requires_grad on for exactly the method's parameters; AdamW parameter groups."""
    method = method or METHODS[config.mode]()
    method.prepare(model, config)
    model.requires_grad_(False)
    groups = method.parameter_groups(model, config)
    for group in groups:
        group["base_lr"] = group["lr"]
        for p in group["params"]:
            p.requires_grad_(True)
    frozen = [n for n, p in model.embedding.lm.named_parameters() if p.requires_grad and "lora_" not in n]
    assert not frozen, f"Embedding LLM weights would train: {frozen[:3]}"
    return groups
