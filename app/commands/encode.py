"""`promptembedder encode`: texts in (arguments or stdin lines), JSON or .npy out."""
from __future__ import annotations

import argparse
import sys

from .common import add_model_arguments, load_model


def register(commands) -> None:
    p = commands.add_parser("encode", help="embed texts for scripts (JSON or .npy out)",
                            description="Embed texts given as arguments, or one per line on standard input.")
    p.add_argument("texts", nargs="*", help="texts to embed (default: read lines from stdin)")
    add_model_arguments(p)
    p.add_argument("--instruction", default=None, help="the query-side task instruction (default: the model's)")
    p.add_argument("--document", action="store_true", help="embed as documents (document-side prompt)")
    p.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default 32)")
    p.add_argument("--no-normalize", action="store_true", help="return raw pooled vectors, not unit length")
    p.add_argument("--format", choices=["json", "npy"], default="json", help="output format (default json)")
    p.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    p.set_defaults(handler=encode)


def encode(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    texts = args.texts or [line.rstrip("\n") for line in sys.stdin]
    if not texts:
        raise ValueError("no texts: pass them as arguments or one per line on stdin")
    model = load_model(args)
    kwargs = dict(batch_size=args.batch_size, normalize_embeddings=not args.no_normalize)
    if args.document:
        vectors = model.encode_document(texts, **kwargs)
    else:
        vectors = model.encode(texts, instruction=args.instruction, **kwargs)
    if args.format == "npy":
        if args.output == "-":
            np.save(sys.stdout.buffer, vectors)
        else:
            np.save(args.output, vectors)
        return 0
    payload = json.dumps({"model": args.model or "default", "fingerprint": model.fingerprint,
                          "dimension": int(vectors.shape[1]), "embeddings": vectors.round(6).tolist()})
    if args.output == "-":
        print(payload)
    else:
        with open(args.output, "w") as f:
            f.write(payload + "\n")
    return 0
