#!/usr/bin/env bash
# On the device: train the default model (issue 7) within one ~30-minute lease. Subcommands, one
# device call each (a call lasts at most 10 minutes; runs go on in the background between calls):
#
#   launch      start every run of variants.txt side by side (setsid) and return at once
#   wait [S]    print progress until all runs end or S seconds pass (default 540)
#   align       pick the best Qwen variant on the dev score; start its alignment-only adaptation to
#               SmolLM2 and Gemma in the background (then `wait` again)
#   package     assemble the shipped checkpoint, embed SciFact and STS-B test for every model to
#               score, pack logs, checkpoint and vectors into $OUT (at most 8 files come back)
#   fetch       the vectors that did not fit into package's $OUT
#
# Needs the backbones staged, converted and checked (convert.sh, check_backbones.py), the prepared
# data in /root/stage/{train,dev}.jsonl.gz and transfer/evaldata carried once. scripts/device/README.md
# has the whole call sequence. Environment: STEPS (default 400), BATCH (64), ALIGN_STEPS (200),
# VARIANTS (names from variants.txt to run, default all; `lora`, `smollm2` and `gemma` are needed later).
#
# TINY=1 ROOT=/tmp/dry OUT=/tmp/dry/out STEPS=4 BATCH=4 bash scripts/device/default-model.sh launch|...
# rehearses every step on this CPU with the tiny random-weight backbones: do that before a lease.
set -uo pipefail
case "${1:-}" in launch|wait|align|package|fetch) ;; *) sed -n '2,20p' "$0"; exit 2 ;; esac
ROOT=${ROOT:-/root} TINY=${TINY:-0}
source scripts/device/env.sh
STEPS=${STEPS:-400} BATCH=${BATCH:-64} ALIGN_STEPS=${ALIGN_STEPS:-200}
runs=$ROOT/runs data=$ROOT/stage/data eval=$ROOT/stage/evaldata default=$ROOT/default
QWEN=qwen2.5-0.5b SMOLLM2=smollm2-135m GEMMA=gemma3-270m
[ "$TINY" = 1 ] && QWEN=tiny-qwen2 SMOLLM2=tiny-llama GEMMA=tiny-gemma3 OMP_NUM_THREADS=1

variants() {  # variants.txt without comments (only those named in VARIANTS, when set), backbones renamed for TINY
    grep -v '^#' scripts/device/variants.txt | grep . \
        | awk -v only=" ${VARIANTS:-} " 'only == "  " || index(only, " " $1 " ")' \
        | sed -e "s/qwen2.5-0.5b/$QWEN/" -e "s/smollm2-135m/$SMOLLM2/" -e "s/gemma3-270m/$GEMMA/"
}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True  # many processes, one GPU

common() {  # the arguments every run shares: same data, steps, batch, dev scoring
    echo --data $data/train.jsonl --dev $data/dev.jsonl --max-steps "$1" --batch-size $BATCH --eval-every 100 \
         --save-every 100000 --no-progress --dev-corpus beir:scifact=$eval/scifact/corpus.jsonl \
         --dev-sts $eval/stsbenchmark/sts-dev.csv
}

launch() {
    mkdir -p $runs $data
    [ -f $data/train.jsonl ] || { gunzip -c $ROOT/stage/train.jsonl.gz > $data/train.jsonl;
                                  gunzip -c $ROOT/stage/dev.jsonl.gz > $data/dev.jsonl; }
    [ -d $eval ] || cp -r transfer/evaldata $eval
    if [ "$TINY" = 1 ]; then  # a rehearsal on 2 cores: small test and dev sets (SciFact: the judged documents)
        python3 -c "import json, sys; judged = {l.split()[1] for l in open(sys.argv[1]).readlines()[1:]}; \
            docs = [l for l in open(sys.argv[2]) if json.loads(l)['_id'] in judged]; open(sys.argv[2], 'w').writelines(docs)" \
            $eval/scifact/qrels/test.tsv $eval/scifact/corpus.jsonl
        for f in $eval/stsbenchmark/sts-dev.csv $eval/stsbenchmark/sts-test.csv; do head -n 200 $f > $f.head && mv $f.head $f; done
    fi
    variants | while read -r name command args; do
        setsid bash -c "start=\$(date +%s); python3 -m app.cli $command $args -o $runs/$name $(common $STEPS) \
            > $runs/$name.log 2>&1; echo \"rc=\$? seconds=\$(( \$(date +%s) - start ))\" > $runs/$name.done" \
            < /dev/null > /dev/null 2>&1 &  # detached: the call returns now, the run goes on
        echo "launched $name: $command $args"
    done
}

progress() {
    for log in $runs/*.log; do
        name=$(basename "$log" .log)
        printf '%-10s %s %s\n' "$name" "$(cat $runs/$name.done 2>/dev/null || echo running)" \
            "$(grep -h '"step"' $runs/$name/train_log.jsonl 2>/dev/null | tail -n 1 | cut -c1-200)"
    done
    command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
    return 0
}

wait_runs() {
    local deadline=$(( $(date +%s) + ${1:-540} ))
    while [ $(date +%s) -lt $deadline ]; do
        [ "$(ls $runs/*.done 2>/dev/null | wc -l)" -ge "$(ls $runs/*.log | wc -l)" ] && break
        sleep 20
    done
    progress
    grep -L 'rc=0' $runs/*.done 2>/dev/null | while read -r f; do echo "FAILED: $f"; tail -n 20 "${f%.done}.log"; done
    return 0
}

align() {
    local qwen_runs=$(variants | awk -v q=$QWEN '$2 == "train" && $0 ~ q {print "'$runs'/" $1}')
    python3 -m app.cli bench levers $qwen_runs $runs/lora | tee $runs/levers.md
    python3 -m app.cli bench levers --json $qwen_runs > $runs/levers.json
    local best=$(python3 -c "import json; rows = json.load(open('$runs/levers.json'))['runs']; \
        print(max(rows, key=lambda r: r['final'].get('dev/score', -1))['run'])")
    echo "chosen on the dev score: $best" | tee $runs/chosen.txt
    for backbone in $SMOLLM2 $GEMMA; do
        setsid bash -c "start=\$(date +%s); python3 -m app.cli align --model $best --backbone $backbone \
            -o $runs/align-$backbone $(common $ALIGN_STEPS) > $runs/align-$backbone.log 2>&1; \
            echo \"rc=\$? seconds=\$(( \$(date +%s) - start ))\" > $runs/align-$backbone.done" \
            < /dev/null > /dev/null 2>&1 &
    done
}

package() {
    python3 -m app.cli bench convergence $runs/align-$SMOLLM2/train_log.jsonl $runs/smollm2/train_log.jsonl \
        | tee $runs/convergence-smollm2.txt
    python3 -m app.cli bench convergence $runs/align-$GEMMA/train_log.jsonl $runs/gemma/train_log.jsonl \
        | tee $runs/convergence-gemma.txt
    # the shipped checkpoint: the chosen run's prompter and one alignment per backbone
    rm -rf $default && mkdir -p $default
    cp $runs/align-$GEMMA/*.safetensors $runs/align-$SMOLLM2/*.safetensors $runs/align-$GEMMA/config.json $default/
    DEFAULT=$default QWEN=$QWEN SMOLLM2=$SMOLLM2 python3 - <<'PY'
import json, os, pathlib
path = pathlib.Path(os.environ["DEFAULT"], "config.json"); config = json.loads(path.read_text())
config["aligned_backbones"] = sorted(p.name[len("alignment-"):-len(".safetensors")]
                                     for p in path.parent.glob("alignment-*.safetensors"))
config["embedding_backbone"], config["cpu_backbone"] = os.environ["QWEN"], os.environ["SMOLLM2"]
path.write_text(json.dumps(config, indent=2) + "\n"); print("shipped alignments:", config["aligned_backbones"])
PY
    local emb=$ROOT/emb && rm -rf $emb && mkdir -p $emb
    embed() {  # MODEL LABEL [--backbone B]: SciFact and STS-B test vectors (float16), named as they will be here
        local model=$1 label=$2; shift 2
        for task in "retrieval $eval/scifact" "sts $eval/stsbenchmark/sts-test.csv"; do
            read -r kind path <<< "$task"
            python3 -m training.evaluation.embed --model $model --label $label --task $kind --data $path \
                --out $emb --float16 --batch-size 64 "$@" 2>&1 | grep -v -E 'it/s\]|s/it\]'
        done
    }
    embed $default default --backbone $QWEN > $runs/embed-qwen.log &
    embed $default default --backbone $SMOLLM2 > $runs/embed-smollm2.log &
    embed $default default --backbone $GEMMA > $runs/embed-gemma.log &
    embed $runs/lora lora-$QWEN > $runs/embed-lora.log & wait
    cat $runs/embed-*.log
    tar -C $runs --exclude='checkpoint-*' --exclude='*.safetensors' -czf $OUT/logs.tar.gz .
    tar -C $ROOT -cf - default | split -b 15M -d - $OUT/default.tar.
    rm -f $ROOT/emb.tar.*; tar -C $emb -cf - . | split -b 15M -d - $ROOT/emb.tar.
    ls $ROOT/emb.tar.* | head -n $(( 8 - $(ls $OUT | wc -l) )) | xargs -r -I{} mv {} $OUT/
    ls -la $OUT; ls $ROOT/emb.tar.* 2>/dev/null | sed 's/^/left for fetch: /'
}

fetch() { ls $ROOT/emb.tar.* 2>/dev/null | head -n 8 | xargs -r -I{} mv {} $OUT/; ls -la $OUT; }

case "${1:-}" in
    launch) launch ;;
    wait) wait_runs "${2:-540}" ;;
    align) align ;;
    package) package ;;
    fetch) fetch ;;
esac
