"""How results name the machine they ran on (benchmarks, training logs, model cards)."""
from __future__ import annotations

import os
import platform

import torch


def device_name(device: torch.device | str) -> str:
    """'1x NVIDIA H200', or 'CPU (x86_64, 2 cores, 2 threads)': the device and what bounds its speed."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"1x {torch.cuda.get_device_name(device)}"
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads)"
