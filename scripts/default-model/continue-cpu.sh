#!/usr/bin/env bash
# Stage 2 of the shipped model on the CPU: a new run that starts from a trained model's weights
# (train --init-from) with longer documents, a fresh optimizer and a short schedule at half the learning rate.
#   [MAX_STEPS=200] [DOC_LEN=256] scripts/default-model/continue-cpu.sh RUN_DIR INIT_MODEL [DATA_DIR]
# Same data and mixture as train-cpu.sh; the Gumbel temperature stays at the model's own 0.3. Run it again after
# an interruption and it resumes from the latest checkpoint (every 20 steps), appending to RUN_DIR/resumes.log.
set -euo pipefail
RUN=$(realpath -m "${1:?usage: continue-cpu.sh RUN_DIR INIT_MODEL [DATA_DIR]}")
INIT=${2:?usage: continue-cpu.sh RUN_DIR INIT_MODEL [DATA_DIR]}
[ "$INIT" = default ] || INIT=$(realpath -m "$INIT")
DATA=$(realpath -m "${3:-$(dirname "$RUN")/data}")
cd "$(dirname "$0")/../.."  # after the paths above are made absolute (relative ones: the caller's)
SHARED=${SHARED:-../shared/data}
source scripts/default-model/mixture.sh
[ -f "$DATA/train.jsonl" ] || scripts/default-model/prepare-data.sh "$DATA"
if ls "$RUN"/checkpoint-*/trainer_state.json >/dev/null 2>&1; then
    exec scripts/default-model/train-cpu.sh "$RUN" "$DATA"  # resuming is the same for both stages
fi
mkdir -p "$RUN"
echo "$(date -Is) start from $INIT" >> "$RUN/resumes.log"
exec .venv/bin/promptembedder train -o "$RUN" --data "$DATA/train.jsonl" --dev "$DATA/dev.jsonl" \
    --dev-sts "$SHARED/stsbenchmark/sts-dev.csv" --init-from "$INIT" \
    --batch-size 16 --hard-negatives 1 --query-length 32 --document-length ${DOC_LEN:-256} \
    --lr 1e-4 --alignment-lr 1e-3 --warmup-steps 10 --max-steps ${MAX_STEPS:-200} --tau-start 0.3 --tau-end 0.3 \
    "${MIXTURE[@]}" \
    --eval-every 100 --save-every 20 --keep-checkpoints 2 --seed 1 --no-progress
