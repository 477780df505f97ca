#!/usr/bin/env bash
# On the device: rebuild the backbone packages from /root/stage and convert them into the cache.
set -euo pipefail
source scripts/device/env.sh
cp transfer/gemma_init.py /root/stage/gemma_init.py 2>/dev/null || true
mkdir -p transfer && cp /root/stage/gemma_init.py transfer/gemma_init.py
bash scripts/device/assemble.sh
python3 - <<'PY'
import time
from embedder.backbones import prepare
for name in ("smollm2-135m", "qwen2.5-0.5b", "gemma3-270m"):
    t = time.time(); prepare(name); print(f"{name}: converted in {time.time() - t:.0f}s", flush=True)
PY
