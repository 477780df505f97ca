"""Model names and checkpoints: safetensors + a JSON config, never pickle.

A checkpoint holds only what training produced: the Prompting LLM's weights (full or LoRA, or
nothing when it is the registry's), one alignment per Embedding LLM it was aligned to, and the
LoRA baseline's adapter. The frozen backbones are referenced by registry name, never copied.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING

from .backbones import BACKBONES, MODEL_FORMS, BackboneError
from .config import PromptEmbedderConfig

if TYPE_CHECKING:  # torch is imported where tensors are handled: `promptembedder models` stays fast
    import torch

CONFIG_FILE = "config.json"
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "assets" / "default-model"


def shipped_model() -> Path | None:
    """The shipped trained model's directory, or None while none is shipped."""
    return DEFAULT_MODEL_DIR if (DEFAULT_MODEL_DIR / CONFIG_FILE).exists() else None


def pick_backbone(config, cuda: bool) -> str:
    """The Embedding LLM a checkpoint runs on when none is asked for: the one it was trained on, except
    off CUDA, where its `cpu_backbone` (a smaller aligned one, e.g. SmolLM2 for Qwen) is faster."""
    if not cuda and config.cpu_backbone in config.aligned_backbones:
        return config.cpu_backbone
    return config.embedding_backbone


def resolve_model_name(name):
    """A directory Path, or a PromptEmbedderConfig for a preset; raises with the accepted forms.

    None and "default" name the shipped trained model.
    """

    if name is None or name == "default":
        if shipped_model() is not None:
            return DEFAULT_MODEL_DIR
        raise BackboneError("no trained default model is shipped yet; pass a model: " + MODEL_FORMS)
    name = str(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).exists():
            raise BackboneError(f"{path} is a directory but not a PromptEmbedder checkpoint (no {CONFIG_FILE})")
        return path
    if name == "tiny":
        return PromptEmbedderConfig()
    if name.startswith("raw:"):
        _, backbone, *rest = name.split(":")
        pooling = rest[0] if rest else "mean"
        _check_backbone(backbone, name)
        return PromptEmbedderConfig(embedding_backbone=backbone, prompting_backbone=None, pooling=pooling,
                                    document_instruction="")
    if name in BACKBONES:
        prompting = "tiny-llama" if BACKBONES[name].tiny else "smollm2-135m"
        return PromptEmbedderConfig(embedding_backbone=name, prompting_backbone=prompting)
    raise BackboneError(f"unknown model '{name}'; a model is " + MODEL_FORMS)


def _check_backbone(backbone: str, name: str) -> None:
    if backbone not in BACKBONES:
        raise BackboneError(f"unknown backbone '{backbone}' in '{name}'; known: {', '.join(BACKBONES)}")


def _lora_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(module).items()}


def trained_state(model) -> dict[str, dict[str, torch.Tensor]]:
    """Everything training changed, by file group (what a checkpoint stores)."""
    config, state = model.config, {}
    if model.prompter is not None:
        if config.prompter_weights == "lora":
            state["prompter"] = _lora_state(model.prompter.lm)
        elif config.prompter_weights == "full":
            # tied weights (SmolLM2's lm_head is its embedding table) are stored once
            seen, tensors = set(), {}
            for key, value in model.prompter.lm.state_dict().items():
                if value.data_ptr() not in seen:
                    seen.add(value.data_ptr())
                    tensors[key] = value.detach().cpu().contiguous()
            state["prompter"] = tensors
        state[f"alignment-{model.embedding.name}"] = {
            k: v.detach().cpu().contiguous() for k, v in model.alignment.state_dict().items()
        }
        for name, tensors in model.extra_alignments.items():
            state.setdefault(f"alignment-{name}", tensors)
    if config.embedding_lora is not None:
        state["embedding_lora"] = _lora_state(model.embedding.lm)
    return state


def save_checkpoint(model, directory: Path) -> Path:
    """Write each file aside and rename it into place; the config goes last (the commit point)."""
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    state = trained_state(model)
    config = asdict(model.config)
    config["aligned_backbones"] = sorted(g.removeprefix("alignment-") for g in state if g.startswith("alignment-"))
    config["embedding_backbone"] = model.embedding.name
    for group, tensors in state.items():
        tmp = directory / f".{group}.safetensors.tmp"
        save_file(tensors, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, directory / f"{group}.safetensors")
    tmp = directory / f".{CONFIG_FILE}.tmp"
    tmp.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(tmp, directory / CONFIG_FILE)
    return directory


def read_config(directory: Path):
    try:
        raw = json.loads((directory / CONFIG_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise BackboneError(f"cannot read {directory / CONFIG_FILE}: {exc}") from exc
    known = {f.name for f in fields(PromptEmbedderConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise BackboneError(f"{directory / CONFIG_FILE} has unknown keys {unknown}; was it written by a newer version?")
    return PromptEmbedderConfig(**raw)


def load_checkpoint(cls, directory: Path, backbone: str | None = None, cuda: bool = False):
    """The saved model on `backbone` (default: pick_backbone for a CUDA or a CPU machine)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    config = read_config(directory)
    backbone = backbone or pick_backbone(config, cuda)
    if not config.text_mode and backbone not in config.aligned_backbones:
        raise BackboneError(
            f"{directory} has no alignment for backbone '{backbone}' (it has: {', '.join(config.aligned_backbones)}); "
            f"run: promptembedder align --model {directory} --backbone {backbone}"
        )
    config.embedding_backbone = backbone
    model = cls.from_config(config)

    def tensors(group: str) -> dict[str, torch.Tensor]:
        path = directory / f"{group}.safetensors"
        try:
            return load_file(str(path))
        except Exception as exc:  # OSError, or safetensors' own error type for a corrupt file
            raise BackboneError(f"cannot read {path}: {exc}") from exc

    if model.prompter is not None:
        if config.prompter_weights == "lora":
            set_peft_model_state_dict(model.prompter.lm, tensors("prompter"))
        elif config.prompter_weights == "full":
            missing, unexpected = model.prompter.lm.load_state_dict(tensors("prompter"), strict=False)
            missing = [k for k in missing if k not in _tied_keys(model.prompter.lm)]
            if missing or unexpected:
                raise BackboneError(f"{directory}: prompter weights do not match (missing {missing[:3]}, "
                                    f"unexpected {unexpected[:3]})")
        model.alignment.load_state_dict(tensors(f"alignment-{backbone}"))
        for name in config.aligned_backbones:
            if name != backbone:
                model.add_alignment(name, tensors(f"alignment-{name}"))
    if config.embedding_lora is not None:
        set_peft_model_state_dict(model.embedding.lm, tensors("embedding_lora"))
    model.eval()
    return model


def _tied_keys(module: torch.nn.Module) -> set[str]:
    seen: dict[int, str] = {}
    tied = set()
    for key, value in module.state_dict(keep_vars=True).items():
        if value.data_ptr() in seen:
            tied.add(key)
        seen.setdefault(value.data_ptr(), key)
    return tied
