#!/usr/bin/python3
"""The PyTorch peer of BENCH.md: a standard Llama (the Hugging Face LlamaForCausalLM layout, written
out in plain eager PyTorch) trained in fp32 or bf16 mixed precision on random tokens with
torch.optim.AdamW, timed the way `litespark bench` times its rows: warm-up steps, then the median
(min, max) of measured full training steps (forward + backward + grad-norm clip + AdamW).

  /usr/bin/python3 bench/pytorch/llama_train.py --config S --threads 2 [--dtype fp32|bf16]
  /usr/bin/python3 bench/pytorch/llama_train.py --dim 512 --layers 8 ... (explicit shapes; bench/peer.ts passes them)

--dtype bf16 is what a PyTorch user does on a CPU: torch.autocast(device_type='cpu',
dtype=torch.bfloat16) around forward + loss (autocast runs linear layers and matmuls in bf16 -
through oneDNN, on AMX tiles where the CPU has them - and keeps its fp32-listed ops such as the
cross-entropy in fp32), fp32 master weights and gradients, the same torch.optim.AdamW. Everything
else is the fp32 peer unchanged (same model code, shapes, steps).

Prints one JSON line. The model is what a user of the standard ecosystem runs:
  RMSNorm (eps 1e-5, computed in fp32), RoPE (theta 10000, HF rotate_half convention),
  grouped-query attention with repeat_kv and materialized scores (q k^T / sqrt(D) + causal mask,
  softmax, @ v: no fused scaled_dot_product_attention), SwiGLU MLP down(silu(gate(x)) * up(x)),
  untied output head, mean cross-entropy. torch.optim.AdamW(lr, betas (0.9, 0.95),
  weight_decay 0.1 on matrices, 0 on norm gains - as litespark), grad-norm clip 1.0 (as litespark).
Runs with Debian's python3-torch (1.13) and nothing else.
"""
import argparse
import contextlib
import json
import math
import os
import resource
import statistics
import sys
import time

# BENCH.md reference rows (kept equal to src/config/presets.ts bench-xs, bench-s, bench-l).
CONFIGS = {
    "XS": dict(dim=256, layers=4, heads=4, kv_heads=2, ffn=768, vocab=8192, seq=256, batch=8),
    "S": dict(dim=512, layers=8, heads=8, kv_heads=4, ffn=1536, vocab=32000, seq=512, batch=4),
    "L": dict(dim=512, layers=4, heads=8, kv_heads=4, ffn=1536, vocab=32000, seq=2048, batch=1),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--config", default="S", help="XS, S or L (BENCH.md); explicit shape flags override it")
    for k in ("dim", "layers", "heads", "kv_heads", "ffn", "vocab", "seq", "batch"):
        p.add_argument("--" + k.replace("_", "-"), dest=k, type=int)
    p.add_argument("--eps", type=float, default=1e-5)
    p.add_argument("--theta", type=float, default=10000.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--init-std", type=float, default=0.02)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                   help="fp32, or bf16 mixed precision (torch.autocast on the CPU, fp32 master weights)")
    a = p.parse_args()
    if a.config.upper() not in CONFIGS:
        p.error(f"unknown --config {a.config!r} (known: {', '.join(CONFIGS)})")
    shape = dict(CONFIGS[a.config.upper()])
    for k in shape:
        if getattr(a, k) is not None:
            shape[k] = getattr(a, k)
    a.shape = shape
    return a


ARGS = parse_args()
# Thread counts are fixed before torch starts its pools: OpenMP (intra-op) and OpenBLAS (GEMMs).
os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(ARGS.threads))

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope_tables(seq, head_dim, theta):
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    t = torch.arange(seq, dtype=torch.float32)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, D): HF convention, halves not interleaved
    return emb.cos(), emb.sin()


def repeat_kv(x, n_rep):
    # (B, KVH, T, D) -> (B, KVH * n_rep, T, D), as transformers' LlamaAttention
    b, kvh, t, d = x.shape
    if n_rep == 1:
        return x
    return x[:, :, None, :, :].expand(b, kvh, n_rep, t, d).reshape(b, kvh * n_rep, t, d)


class Attention(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.h, self.kvh = s["heads"], s["kv_heads"]
        self.d = s["dim"] // self.h
        self.q_proj = nn.Linear(s["dim"], self.h * self.d, bias=False)
        self.k_proj = nn.Linear(s["dim"], self.kvh * self.d, bias=False)
        self.v_proj = nn.Linear(s["dim"], self.kvh * self.d, bias=False)
        self.o_proj = nn.Linear(self.h * self.d, s["dim"], bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.h, self.d).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.kvh, self.d).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.kvh, self.d).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = repeat_kv(k, self.h // self.kvh)
        v = repeat_kv(v, self.h // self.kvh)
        scores = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(self.d) + mask  # (B, H, T, T)
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, self.h * self.d)
        return self.o_proj(out)


class Mlp(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.gate_proj = nn.Linear(s["dim"], s["ffn"], bias=False)
        self.up_proj = nn.Linear(s["dim"], s["ffn"], bias=False)
        self.down_proj = nn.Linear(s["ffn"], s["dim"], bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, s, eps):
        super().__init__()
        self.input_layernorm = RMSNorm(s["dim"], eps)
        self.self_attn = Attention(s)
        self.post_attention_layernorm = RMSNorm(s["dim"], eps)
        self.mlp = Mlp(s)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, s, eps, theta, std):
        super().__init__()
        self.embed_tokens = nn.Embedding(s["vocab"], s["dim"])
        self.layers = nn.ModuleList(Block(s, eps) for _ in range(s["layers"]))
        self.norm = RMSNorm(s["dim"], eps)
        self.lm_head = nn.Linear(s["dim"], s["vocab"], bias=False)  # untied
        cos, sin = rope_tables(s["seq"], s["dim"] // s["heads"], theta)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        mask = torch.full((s["seq"], s["seq"]), float("-inf")).triu(1)
        self.register_buffer("mask", mask, persistent=False)
        for name, p in self.named_parameters():
            if p.dim() == 2:
                # as litespark: N(0, std), residual-branch outputs scaled by 1/sqrt(2L)
                scale = 1 / math.sqrt(2 * s["layers"]) if name.endswith(("o_proj.weight", "down_proj.weight")) else 1
                nn.init.normal_(p, 0.0, std * scale)

    def forward(self, ids, targets):
        t = ids.shape[1]
        x = self.embed_tokens(ids)
        cos, sin, mask = self.cos[:t], self.sin[:t], self.mask[:t, :t]
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        logits = self.lm_head(self.norm(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))


def cpu_capability():
    """The vector ISA ATen's own kernels use (torch 1.13 reports it only in its build summary)."""
    for line in torch.__config__.show().splitlines():
        if "CPU capability usage:" in line:
            return line.split(":", 1)[1].strip()
    return None


def main():
    a, s = ARGS, ARGS.shape
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = Llama(s, a.eps, a.theta, a.init_std)
    decay = [p for p in model.parameters() if p.dim() == 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a.lr, betas=(0.9, 0.95), eps=1e-8,
    )
    g = torch.Generator().manual_seed(a.seed)
    batches = []
    for _ in range(4):  # drawn before timing, cycled through
        toks = torch.randint(0, s["vocab"], (s["batch"], s["seq"] + 1), generator=g)
        batches.append((toks[:, :-1].contiguous(), toks[:, 1:].contiguous()))

    def autocast():
        # bf16: autocast around forward + loss only; backward follows the dtypes autocast chose.
        if a.dtype == "bf16":
            return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    times, loss = [], float("nan")
    cpu0 = wall0 = 0.0
    for i in range(a.warmup + a.steps):
        ids, targets = batches[i % len(batches)]
        if i == a.warmup:
            # the measured steps' CPU time (all threads) and wall time: bench/peer.ts applies the
            # energy estimate of litespark's rows (src/metrics/energy.ts) to them
            cpu0, wall0 = time.process_time(), time.perf_counter()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with autocast():
            out = model(ids, targets)
        out.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
        loss = out.item()
        ms = (time.perf_counter() - t0) * 1000
        if i >= a.warmup:
            times.append(ms)
        print(json.dumps({"event": "progress", "done": i + 1, "total": a.warmup + a.steps, "ms": ms}), file=sys.stderr, flush=True)

    cpu_s_measured, wall_s_measured = time.process_time() - cpu0, time.perf_counter() - wall0
    med = statistics.median(times)
    tokens_per_step = s["batch"] * s["seq"]
    print(json.dumps({
        "framework": "pytorch",
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "config": a.config.upper(),
        "dtype": a.dtype,
        "autocast": "cpu/bfloat16" if a.dtype == "bf16" else None,
        "shape": s,
        "threads": torch.get_num_threads(),
        "allocator": "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "default",
        "ld_preload": os.environ.get("LD_PRELOAD") or None,
        "tokens_per_step": tokens_per_step,
        "tokens_per_s": tokens_per_step * 1000 / med,
        "step_ms_median": med,
        "step_ms_min": min(times),
        "step_ms_max": max(times),
        "warmup": a.warmup,
        "steps": a.steps,
        "cpu_s_measured": cpu_s_measured,
        "wall_s_measured": wall_s_measured,
        "peak_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "params": sum(p.numel() for p in model.parameters()),
        "loss": loss,
        "cpu_capability": cpu_capability(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        # environment knobs of the PyTorch configurations bench/peer.ts runs (null when unset)
        "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY") or None,
        "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA") or None,
    }), flush=True)


if __name__ == "__main__":
    main()
