"""Check that each converted backbone embeds like the reference conversion made on the CPU machine.

The device once converted Gemma's GGUF into a different model (an older transformers) under the same
name and config; only its vectors gave it away. Run after `convert.sh`:

    python3 scripts/device/check_backbones.py            # compare with reference-vectors.npz
    python3 scripts/device/check_backbones.py --write    # (on the CPU machine) write the reference
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REFERENCE = Path(__file__).with_name("reference-vectors.npz")
BACKBONES = ("smollm2-135m", "qwen2.5-0.5b", "gemma3-270m")
SENTENCES = [
    "Vitamin D supplementation does not reduce the risk of hip fractures in older adults.",
    "What are the symptoms of glaucoma?",
    "A man is playing a guitar on the street.",
    "def read_json(path): return json.loads(open(path).read())",
]
# Mean-pooled LLM vectors share a large common direction (raw cosines between unrelated sentences are
# 0.4-0.9), so the check also compares the vectors with their mean over the sentences removed.
MIN_COSINE, MIN_CENTERED_COSINE = 0.98, 0.9


def vectors(backbone: str) -> np.ndarray:
    from embedder import PromptEmbedder

    model = PromptEmbedder.from_pretrained(f"raw:{backbone}:mean")
    return model.encode(SENTENCES, normalize_embeddings=True, show_progress_bar=False).astype(np.float32)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--write", action="store_true", help="write the reference file instead of checking")
    p.add_argument("--backbones", nargs="+", choices=BACKBONES, default=list(BACKBONES),
                   help="which converted backbones to check (default: all)")
    args = p.parse_args()
    if args.write:
        np.savez_compressed(REFERENCE, **{name: vectors(name).astype(np.float16) for name in BACKBONES})
        print(f"wrote {REFERENCE}")
        return 0
    reference, failed = np.load(REFERENCE), False
    for name in args.backbones:
        got, want = vectors(name), reference[name].astype(np.float32)
        raw, centered = cosines(got, want), cosines(got - got.mean(0), want - want.mean(0))
        ok = raw.min() >= MIN_COSINE and centered.min() >= MIN_CENTERED_COSINE
        failed |= not ok
        print(f"{name}: cosine with the reference {raw.round(4).tolist()}, centered {centered.round(4).tolist()}: "
              f"{'ok' if ok else 'MISMATCH'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
