#!/usr/bin/env bash
# The lever study and the LoRA baseline on the CPU: short runs at one fixed, equal budget (steps, batch, data),
# each changing one setting of the shipped configuration (scripts/default-model/train-cpu.sh), then one table.
#   scripts/default-model/levers-cpu.sh LEVERS_DIR [DATA_DIR] [RUN ...]
# RUN names (default: all, in this order): base lora reuse2 deep16, then the second round, each one change to
# deep16 (the shipped configuration since): deep16-k10 deep16-mean deep16-embedding deep16-tau03 deep16-lr2x
# deep16-uniform. A run that has checkpoints resumes, a finished run is skipped, so the script can be stopped and
# started again at any moment. Runs live outside the repository.
# The table: promptembedder bench levers LEVERS_DIR/* (dev scores only: never choose on a test split).
set -euo pipefail
OUT=$(realpath -m "${1:?usage: levers-cpu.sh LEVERS_DIR [DATA_DIR] [RUN ...]}")
DATA=$(realpath -m "${2:-$(dirname "$OUT")/data}")
cd "$(dirname "$0")/../.."  # after the paths above are made absolute (relative ones: the caller's)
shift $(( $# >= 2 ? 2 : 1 ))
RUNS=${*:-base lora reuse2 deep16 deep16-k10 deep16-mean deep16-embedding deep16-tau03 deep16-lr2x deep16-uniform}
SHARED=${SHARED:-../shared/data}
source scripts/default-model/mixture.sh
STEPS=${STEPS:-40}
[ -f "$DATA/train.jsonl" ] || scripts/default-model/prepare-data.sh "$DATA"

# What every run shares with the shipped configuration (only the budget is smaller).
COMMON=(--data "$DATA/train.jsonl" --dev "$DATA/dev.jsonl" --dev-sts "$SHARED/stsbenchmark/sts-dev.csv"
    --pooling last --batch-size 16 --hard-negatives 1 --query-length 32 --document-length 128
    --warmup-steps 5 --max-steps "$STEPS" --eval-every "$STEPS" --save-every 10 --keep-checkpoints 1 --seed 0
    "${MIXTURE[@]}" --no-progress)
PROMPTER=(--backbone smollm2-135m --prompter smollm2-135m --prompter-weights lora --soft-tokens 5
    --placement suffix --lr 2e-4 --alignment-lr 2e-3 --tau-start 1.0 --tau-end 0.3
    --query-instruction "Retrieve semantically similar text.")
DEEP16=("${PROMPTER[@]}" --deep-rank 16)  # the shipped configuration since the first round; round 2 changes one thing

train() {  # NAME COMMAND ARGS...: start, resume, or skip a finished run
    local name=$1 command=$2; shift 2
    local dir="$OUT/$name"
    if [ -f "$dir/train_log.jsonl" ] && grep -q '"dev/score"' "$dir/train_log.jsonl" \
        && [ -d "$dir/checkpoint-$(printf %06d "$STEPS")" ]; then
        echo "$name: finished"; return
    fi
    mkdir -p "$dir"
    if ls "$dir"/checkpoint-*/trainer_state.json >/dev/null 2>&1; then
        echo "$(date -Is) resume" >> "$dir/resumes.log"
        .venv/bin/promptembedder "$command" --resume -o "$dir" --data "$DATA/train.jsonl" --dev "$DATA/dev.jsonl" \
            --dev-sts "$SHARED/stsbenchmark/sts-dev.csv" --no-progress
    else
        echo "$(date -Is) start" >> "$dir/resumes.log"
        .venv/bin/promptembedder "$command" -o "$dir" "${COMMON[@]}" "$@"
    fi
}

for run in $RUNS; do
    case $run in
        base)   train base train "${PROMPTER[@]}" ;;
        reuse2) train reuse2 train "${PROMPTER[@]}" --text-reuse 2 --reuse-block 4 ;;
        deep16) train deep16 train "${DEEP16[@]}" ;;
        lora)   train lora train-lora --backbone smollm2-135m --lr 2e-4 ;;
        # round 2: deep16 with one more change (later options override earlier ones)
        deep16-k10)       train "$run" train "${DEEP16[@]}" --soft-tokens 10 ;;
        deep16-mean)      train "$run" train "${DEEP16[@]}" --pooling mean ;;
        deep16-embedding) train "$run" train "${DEEP16[@]}" --soft-token-source embedding ;;
        deep16-tau03)     train "$run" train "${DEEP16[@]}" --tau-start 0.3 ;;
        deep16-lr2x)      train "$run" train "${DEEP16[@]}" --lr 4e-4 --alignment-lr 4e-3 ;;
        deep16-uniform)   train "$run" train "${DEEP16[@]}" --task-weight beir:scifact=1 \
                              --task-weight sts:sts-train=1 --task-weight jsonl:squad/pairs=1 \
                              --task-weight jsonl:arxiv-2007-2017/pairs=1 --task-weight jsonl:arxiv-cs-2025/pairs=1 ;;
        *) echo "unknown run: $run (see the header)" >&2; exit 2 ;;
    esac
done
.venv/bin/promptembedder bench levers "$OUT"/*/ > "$OUT/levers.md"
cat "$OUT/levers.md"
