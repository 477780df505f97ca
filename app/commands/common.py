"""Options shared by every command that takes a model, and the model used when none is named."""
from __future__ import annotations

import argparse
import sys

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
    from embedder.checkpoint import shipped_model

    if shipped_model() is not None:
        return None, ""
    return FALLBACK_MODEL, FALLBACK_NOTE


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    from embedder.backbones import MODEL_FORMS
    from embedder.dtypes import DTYPE_CHOICES, DTYPE_HELP

    parser.add_argument("--model", default=None,
                        help="the embedder (default, or 'default': the shipped trained model; while none is "
                             f"shipped, {FALLBACK_MODEL}). One of: {MODEL_FORMS}")
    parser.add_argument("--backbone", default=None,
                        help="for a checkpoint aligned to several Embedding LLMs: which one to run (default: "
                             "the one it was trained on; on a CPU-only machine its CPU backbone when it has one)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto", help=DTYPE_HELP)


def load_model(args: argparse.Namespace):
    """The model for --model; args.model becomes the name actually loaded (commands print and record it)."""
    from embedder import PromptEmbedder

    args.model, note = model_or_default(args.model)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return PromptEmbedder.from_pretrained(args.model, backbone=args.backbone, device=args.device, dtype=args.dtype)
