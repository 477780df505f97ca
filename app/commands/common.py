"""Options shared by every command that takes a model, and loading it (the default: app.services.models)."""
from __future__ import annotations

import argparse
import sys

from app.services.models import FALLBACK_MODEL, model_or_default

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
