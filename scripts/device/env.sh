# Sourced at the start of every device call: the carried wheels on PYTHONPATH, state outside the repo
# (/root survives between calls while the machine stays warm; the repo copy is replaced).
# ROOT moves that state (a rehearsal on the CPU machine: ROOT=/tmp/dry).
ROOT=${ROOT:-/root}
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
export PROMPTEMBEDDER_HOME=$ROOT/pehome PROMPTEMBEDDER_CACHE=${PROMPTEMBEDDER_CACHE_ON_DEVICE:-$ROOT/pecache}
mkdir -p $ROOT/stage $ROOT/results
if [ ! -d /tmp/site/transformers ] && [ -d transfer/wheels ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site transfer/wheels/*.whl
fi
stage() { for d in "$@"; do cp -r "$d"/. $ROOT/stage/; done; ls $ROOT/stage | wc -l | xargs echo "staged files:"; }
