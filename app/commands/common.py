"""Options shared by every command that takes a model."""
from __future__ import annotations

import argparse


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    from embedder.backbones import MODEL_FORMS

    parser.add_argument("--model", default=None,
                        help=f"the embedder (default: the shipped trained model). One of: {MODEL_FORMS}")
    parser.add_argument("--backbone", default=None,
                        help="for a checkpoint aligned to several Embedding LLMs: which one to run")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")


def load_model(args: argparse.Namespace):
    from embedder import PromptEmbedder

    return PromptEmbedder.from_pretrained(args.model, backbone=args.backbone, device=args.device)
