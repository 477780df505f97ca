"""Peak memory and time of chunking one long text (issue 14, #6): `python scripts/chunking_memory.py MB`.

The text is this repository's README repeated to MB mebibytes, chunked with the SmolLM2 tokenizer at the
indexer's defaults (256 tokens, overlap 32). Run it at an older commit to compare.
"""
import resource
import sys
import time
from pathlib import Path

from embedder import PromptEmbedder
from indexer.chunking import chunk_text

size = int(sys.argv[1]) * 2**20 if len(sys.argv) > 1 else 5 * 2**20
tokenizer = PromptEmbedder.from_pretrained("raw:smollm2-135m").tokenizer
seed = (Path(__file__).resolve().parent.parent / "README.md").read_text()
text = (seed * (size // len(seed) + 1))[:size]
started = time.perf_counter()
chunks = chunk_text(text, tokenizer, 256, 32)
print(f"{size / 2**20:.0f} MiB: {len(chunks)} chunks in {time.perf_counter() - started:.1f} s, "
      f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (model loaded included)")
