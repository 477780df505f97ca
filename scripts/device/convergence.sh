#!/usr/bin/env bash
# On the device: the alignment-only experiment. Train PromptEmbedder on backbone A, then adapt it to
# backbone B by training only a new alignment, against training from scratch on B; same data and steps.
# Usage: bash scripts/device/convergence.sh A B STEPS [extra train args...]
set -uo pipefail
source scripts/device/env.sh
A=$1 B=$2 STEPS=$3; shift 3
data=/root/stage/data && [ -f $data/train.jsonl ] || { mkdir -p $data; gunzip -c /root/stage/train.jsonl.gz > $data/train.jsonl; gunzip -c /root/stage/dev.jsonl.gz > $data/dev.jsonl; }
runs=/root/runs && mkdir -p $runs
common=(--data $data/train.jsonl --dev $data/dev.jsonl --max-steps $STEPS --batch-size 64 --eval-every 25
        --eval-batches 8 --save-every 100000 --no-progress "$@")
t0=$(date +%s)
python3 -m app.cli train --backbone "$A" -o $runs/pe-$A "${common[@]}" > $runs/pe-$A.log 2>&1; echo "train $A: rc=$? $(( $(date +%s) - t0 ))s"
t0=$(date +%s)
python3 -m app.cli align --model $runs/pe-$A --backbone "$B" -o $runs/align-$B "${common[@]}" > $runs/align-$B.log 2>&1; echo "align $B: rc=$? $(( $(date +%s) - t0 ))s"
t0=$(date +%s)
python3 -m app.cli train --backbone "$B" -o $runs/pe-$B "${common[@]}" > $runs/pe-$B.log 2>&1; echo "train $B: rc=$? $(( $(date +%s) - t0 ))s"
python3 -m app.cli bench convergence $runs/align-$B/train_log.jsonl $runs/pe-$B/train_log.jsonl | tee $runs/convergence.txt
tail -n 3 $runs/*.log
tar -C $runs --exclude='checkpoint-*' -czf "$OUT/runs.tar.gz" .
