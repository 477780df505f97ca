# Sourced at the start of every device call: the carried wheels on PYTHONPATH, state outside the repo
# (/root survives between calls while the machine stays warm; the repo copy is replaced).
export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
export PROMPTEMBEDDER_HOME=/root/pehome PROMPTEMBEDDER_CACHE=/root/pecache
mkdir -p /root/stage /root/results
if [ ! -d /tmp/site/gguf ] && [ -d transfer/wheels ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site transfer/wheels/*.whl
fi
stage() { for d in "$@"; do cp -r "$d"/. /root/stage/; done; ls /root/stage | wc -l | xargs echo "staged files:"; }
