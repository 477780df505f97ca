#!/usr/bin/env bash
# The shipped default model, trained on the CPU: E = P = SmolLM2-135M, P through LoRA, suffix soft tokens.
#   [DEEP_RANK=16] [SOFT_TOKENS=10] [TAU_START=0.3] [MAX_STEPS=340] [METHOD=lora] scripts/default-model/train-cpu.sh RUN_DIR [DATA_DIR]
# DEEP_RANK: deep alignment's rank (default 0, as the first shipped model was trained; the shipped stage 1 used 16,
# the winner of the lever study's first round).
# SOFT_TOKENS: K (default 5, as shipped). TAU_START: the Gumbel temperature's start, annealed to 0.3 (default
# 1.0, as shipped). Both were levers of the second round (docs/results/levers-cpu-round2.md).
# METHOD=lora: the LoRA baseline instead (`train-lora`: adapters on E, the instruction as text) on the same data,
# mixture, batch, lengths, steps and schedule, for the side-by-side comparison at the shipped run's length.
# Runs `prepare-data` once (licensed sets only: see scripts/default-model/prepare-data.sh), then trains; run it
# again after an interruption and it resumes from the latest checkpoint (every 20 steps, a few minutes on
# 2 cores), appending to RUN_DIR/resumes.log. Runs live outside the repository. PROMPTEMBEDDER: the command
# (default .venv/bin/promptembedder; on the GPU machine "python3 -m app.cli", see scripts/device/test-vectors.sh).
# PE_BACKBONE: E and P (default smollm2-135m; tiny-llama in rehearsals).
set -euo pipefail
RUN=$(realpath -m "${1:?usage: train-cpu.sh RUN_DIR [DATA_DIR]}")
DATA=$(realpath -m "${2:-$(dirname "$RUN")/data}")
cd "$(dirname "$0")/../.."  # after the paths above are made absolute (relative ones: the caller's)
SHARED=${SHARED:-../shared/data}
source scripts/default-model/mixture.sh
case ${METHOD:=prompter} in prompter|lora) ;; *) echo "METHOD must be prompter or lora, not '$METHOD'" >&2; exit 2 ;; esac
[ -f "$DATA/train.jsonl" ] || scripts/default-model/prepare-data.sh "$DATA"
read -r -a CLI <<< "${PROMPTEMBEDDER:-.venv/bin/promptembedder}"
PE_BACKBONE=${PE_BACKBONE:-smollm2-135m}  # E and P (another only for rehearsals: tiny-llama)
DEV=(--data "$DATA/train.jsonl" --dev "$DATA/dev.jsonl" --dev-sts "$SHARED/stsbenchmark/sts-dev.csv" --no-progress)
if ls "$RUN"/checkpoint-*/trainer_state.json >/dev/null 2>&1; then
    command=train  # a run resumes with the command that started it (its training_args.json names the mode)
    grep -q '"mode": "lora"' "$RUN/training_args.json" && command=train-lora
    echo "$(date -Is) resume from $(ls -d "$RUN"/checkpoint-* | tail -1)" >> "$RUN/resumes.log"
    exec "${CLI[@]}" $command --resume -o "$RUN" "${DEV[@]}"
fi
SCHEDULE=(--pooling last --batch-size 16 --hard-negatives 1 --query-length 32 --document-length 128
    --lr 2e-4 --warmup-steps 20 --max-steps ${MAX_STEPS:-340} "${MIXTURE[@]}"
    --eval-every 100 --save-every 20 --keep-checkpoints 2 --seed 0)
mkdir -p "$RUN"
echo "$(date -Is) start ($METHOD)" >> "$RUN/resumes.log"
if [ "$METHOD" = lora ]; then
    exec "${CLI[@]}" train-lora -o "$RUN" "${DEV[@]}" --backbone "$PE_BACKBONE" "${SCHEDULE[@]}"
fi
exec "${CLI[@]}" train -o "$RUN" "${DEV[@]}" "${SCHEDULE[@]}" \
    --backbone "$PE_BACKBONE" --prompter "$PE_BACKBONE" --prompter-weights lora --soft-tokens ${SOFT_TOKENS:-5} --placement suffix \
    --deep-rank ${DEEP_RANK:-0} --alignment-lr 2e-3 --tau-start ${TAU_START:-1.0} --tau-end 0.3 \
    --query-instruction "Retrieve semantically similar text."
