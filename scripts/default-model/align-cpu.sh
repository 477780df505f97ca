#!/usr/bin/env bash
# Alignment-only adaptation of the shipped model to other Embedding LLMs, on the CPU: the Prompting LLM stays
# frozen, only a new alignment matrix trains, on the shipped run's data and with its dev scores.
#   scripts/default-model/align-cpu.sh ALIGN_DIR [DATA_DIR] [BACKBONE ...]
# BACKBONE names (default: gemma3-270m qwen2.5-0.5b). A run with checkpoints resumes, a finished one is skipped.
# Each run's wall time is in its train_log.jsonl (step_s, dev_s); compare with the shipped run's.
set -euo pipefail
OUT=$(realpath -m "${1:?usage: align-cpu.sh ALIGN_DIR [DATA_DIR] [BACKBONE ...]}")
DATA=$(realpath -m "${2:-$(dirname "$OUT")/data}")
cd "$(dirname "$0")/../.."  # after the paths above are made absolute (relative ones: the caller's)
shift $(( $# >= 2 ? 2 : 1 ))
TARGETS=${*:-gemma3-270m qwen2.5-0.5b}
SHARED=${SHARED:-../shared/data}
source scripts/default-model/mixture.sh
STEPS=${STEPS:-30}
MODEL=${MODEL:-assets/default-model}
[ -f "$DATA/train.jsonl" ] || scripts/default-model/prepare-data.sh "$DATA"
DEV=(--dev "$DATA/dev.jsonl" --dev-sts "$SHARED/stsbenchmark/sts-dev.csv" --no-progress)

for target in $TARGETS; do
    dir="$OUT/$target"
    if [ -f "$dir/config.json" ]; then echo "$target: finished"; continue; fi
    mkdir -p "$dir"
    if ls "$dir"/checkpoint-*/trainer_state.json >/dev/null 2>&1; then
        echo "$(date -Is) resume" >> "$dir/resumes.log"
        .venv/bin/promptembedder align --resume -o "$dir" --model "$MODEL" --backbone "$target" \
            --data "$DATA/train.jsonl" "${DEV[@]}"
    else
        echo "$(date -Is) start" >> "$dir/resumes.log"
        .venv/bin/promptembedder align -o "$dir" --model "$MODEL" --backbone "$target" --data "$DATA/train.jsonl" \
            "${DEV[@]}" --batch-size 16 --hard-negatives 1 --query-length 32 --document-length 128 \
            --lr 2e-3 --warmup-steps 3 --max-steps "$STEPS" --eval-every "$STEPS" --save-every 5 --keep-checkpoints 1 --seed 0 \
            "${MIXTURE[@]}"
    fi
done
