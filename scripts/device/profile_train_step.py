"""Where a pe-suffix training step spends its time (the H100 profile in docs/benchmarks.md).

Times P's relaxed generation (forward, forward + backward), E's suffix pass and the batch layout at the
benchmark's shape (Qwen2.5-0.5B-shaped E, SmolLM2-shaped P, random weights), then prints torch.profiler
tables. CUDA only: `PYTHONPATH=. python3 scripts/device/profile_train_step.py`.
"""
import time, torch, contextlib
from training.bench import build
dev = torch.device("cuda")
model = build("pe-suffix", "qwen2.5-0.5b", dev, "sdpa", 5, 16, "lora")
model.train()
g = torch.Generator().manual_seed(0)
q = torch.randint(1, 150000, (64, 64), generator=g).tolist()
d = torch.randint(1, 150000, (64, 256), generator=g).tolist()
ins, dins = " ".join(f"w{i}" for i in range(16)), "d0 d1 d2 d3 d4 d5 d6 d7"
def timed(label, fn, n=3):
    for _ in range(2): fn()
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(n): fn()
    torch.cuda.synchronize(); print(f"{label}: {(time.perf_counter()-t)/n*1000:.1f} ms", flush=True)
ac = lambda: torch.autocast("cuda", dtype=torch.bfloat16)
def p_fwd():
    with ac(): return model.soft_prompts([ins, dins])
def p_fwd_bwd():
    s = p_fwd(); sum(v.inputs.float().sum() for v in s.values()).backward()
with torch.no_grad(): soft = p_fwd()
def e_suffix():
    with ac(): model.embed(q, soft[ins], True); model.embed(d, soft[dins], True)
def e_nograd():
    with torch.no_grad(), ac(): model.embedding.layout(d, 0)
def layout_only():
    model.embedding.layout(d, 0); model.embedding.layout(q, 0)
timed("P forward", p_fwd); timed("P fwd+bwd", p_fwd_bwd); timed("E suffix fwd (2 sides)", e_suffix); timed("layout only", layout_only)
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
    p_fwd_bwd(); e_suffix(); torch.cuda.synchronize()
print(prof.key_averages().table(sort_by="cpu_time_total", row_limit=22, max_name_column_width=60))
print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=12, max_name_column_width=60))
