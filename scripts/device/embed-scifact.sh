#!/usr/bin/env bash
# On the device: SciFact test embeddings (float16) for each model, sent back as <name>.tar.NN parts.
# Usage: bash scripts/device/embed-scifact.sh NAME MODEL [MODEL...]   (data staged in /root/stage/evaldata)
set -uo pipefail
source scripts/device/env.sh
name=$1; shift
dir=/root/emb-$name && mkdir -p "$dir"
for model in "$@"; do
    python3 -m training.evaluation.embed --model "$model" --task retrieval --data /root/stage/evaldata/scifact \
        --out "$dir" --float16 --batch-size 64 2>&1 | grep -v -E "it/s\]|s/it\]" | tee -a "$dir/summary.log"
done
tar -C "$dir" -cf - . | split -b 15M -d - "$OUT/$name.tar."
