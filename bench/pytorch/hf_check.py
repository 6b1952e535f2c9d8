#!/usr/bin/python3
"""The PyTorch side of bench/hf_check.ts: reads litespark checkpoint directories the way Hugging Face
does and compares their logits with litespark's.

  /usr/bin/python3 bench/pytorch/hf_check.py CASES.json      (bench/hf_check.ts writes CASES.json)

Per checkpoint directory (an fp32 and a bf16 export of each trained model):
  - config.json is read as transformers' LlamaConfig reads it (head_dim, num_key_value_heads,
    rms_norm_eps, rope_theta, tie_word_embeddings; rope_scaling, biases and activations other than
    SiLU are refused: this model, like litespark, has none of them);
  - model.safetensors is parsed by the `safetensors` package when it is importable, else here
    (8-byte header length, JSON header, raw little-endian tensors; F32, BF16, F16), and loaded into
    the module below with the checks from_pretrained makes: no missing, unexpected or misshapen
    tensor (lm_head.weight may be absent exactly when the embeddings are tied; it then IS
    model.embed_tokens.weight; rotary_emb.inv_freq is ignored);
  - the module is transformers' LlamaForCausalLM written out (the same HF names and math as
    bench/pytorch/llama_train.py, which cannot be imported: it parses its arguments on import):
    RMSNorm in fp32 (x * rsqrt(mean(x^2) + eps), then weight * x), RoPE with inv_freq =
    1 / theta^(2i/D) and the rotate_half layout (cos/sin of cat(freqs, freqs)), q/k/v projections
    split into heads by .view(B, T, H, D), repeat_kv (query head h reads kv head h // (H / KVH)),
    scores q k^T / sqrt(D) + causal mask, softmax in fp32, o_proj, SwiGLU down(silu(gate) * up),
    final norm, lm_head.
Logits are computed in fp32 (and in fp64, to see whose fp32 rounding is larger), for a bf16
export from weights loaded as bf16 and widened to fp32 (what from_pretrained(torch_dtype=float32)
does), and also all in bf16 (torch_dtype=bfloat16; informational, its error is bf16's). Two
deliberately wrong readings (interleaved RoPE pairs as in Meta's original layout; query head h on
kv head h % KVH) are run as negative controls: they must land far outside the tolerance.

Tokenizer: the ids litespark encoded are decoded with tokenizer.json's vocabulary (byte-level) and
must give the text back; with the `regex` module (Debian's python3-regex) the text is also
re-encoded here by the BPE algorithm of the `tokenizers` library (pre-tokenizer split, byte-level
alphabet, merges applied lowest rank first, leftmost first among equals). When `tokenizers` or
`transformers` are importable they are used too: Tokenizer.from_file, AutoTokenizer.from_pretrained,
PreTrainedTokenizerFast(tokenizer_file=...) and LlamaForCausalLM.from_pretrained(dir).

Prints a readable report, then one line `HF_CHECK_JSON {...}` with every figure. Needs torch and
numpy only (Debian's python3-torch 1.13 is enough).
"""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

try:
    import regex as _regex  # \p{L}, \p{N} as the tokenizers library's Oniguruma has them
except ImportError:
    _regex = None


def optional(name):
    try:
        return __import__(name)
    except Exception:  # noqa: BLE001 - a broken install counts as absent
        return None


st_torch = None
try:
    import safetensors.torch as st_torch  # noqa: E402
except Exception:  # noqa: BLE001
    st_torch = None
tokenizers_lib = optional("tokenizers")
transformers = optional("transformers")


# ---- config.json, as LlamaConfig reads it ------------------------------------------------------

class Cfg:
    def __init__(self, path):
        with open(path) as f:
            c = json.load(f)
        if c.get("model_type", "llama") != "llama":
            raise SystemExit(f"{path}: model_type {c.get('model_type')!r}, not llama")
        for key, ok in (("rope_scaling", None), ("attention_bias", False), ("mlp_bias", False)):
            if c.get(key, ok) != ok:
                raise SystemExit(f"{path}: {key} = {c[key]!r}: not modelled here")
        if c.get("hidden_act", "silu") != "silu":
            raise SystemExit(f"{path}: hidden_act {c['hidden_act']!r}: not modelled here")
        self.vocab = c["vocab_size"]
        self.dim = c["hidden_size"]
        self.ffn = c["intermediate_size"]
        self.layers = c["num_hidden_layers"]
        self.heads = c["num_attention_heads"]
        self.kv_heads = c.get("num_key_value_heads") or self.heads  # LlamaConfig: None -> heads
        self.head_dim = c.get("head_dim") or self.dim // self.heads
        self.eps = c.get("rms_norm_eps", 1e-6)  # LlamaConfig's default
        self.theta = c.get("rope_theta", 10000.0)
        self.tied = bool(c.get("tie_word_embeddings", False))  # LlamaConfig's default
        self.raw = c

    def line(self):
        return (f"hidden {self.dim}, {self.layers} layers, {self.heads} heads / {self.kv_heads} kv, head_dim {self.head_dim}, "
                f"ffn {self.ffn}, vocab {self.vocab}, eps {self.eps:g}, theta {self.theta:g}, "
                f"{'tied' if self.tied else 'untied'} head, torch_dtype {self.raw.get('torch_dtype')}")


# ---- model.safetensors -------------------------------------------------------------------------

NP_DTYPES = {"F32": ("<f4", None), "F16": ("<f2", None), "BF16": ("<u2", torch.bfloat16)}


def read_safetensors(path):
    """name -> tensor in the stored dtype; and which reader was used."""
    if st_torch is not None:
        return st_torch.load_file(path), "safetensors package"
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = info["dtype"]
        if dt not in NP_DTYPES:
            raise SystemExit(f"{path}: tensor {name}: dtype {dt} not handled here")
        npdt, tdt = NP_DTYPES[dt]
        start, end = info["data_offsets"]
        numel = math.prod(info["shape"])
        if end - start != numel * np.dtype(npdt).itemsize or base + end > len(data):
            raise SystemExit(f"{path}: tensor {name}: offsets {start}..{end} do not hold {numel} x {dt}")
        a = np.frombuffer(data, dtype=npdt, count=numel, offset=base + start).copy()
        t = torch.from_numpy(a.view(np.int16)).view(tdt) if tdt is not None else torch.from_numpy(a)
        out[name] = t.reshape(info["shape"])
    return out, "numpy (safetensors package absent)"


# ---- transformers' LlamaForCausalLM, written out -----------------------------------------------

class LlamaRMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.variance_epsilon = eps

    def forward(self, x):
        dtype = x.dtype
        x = x.to(torch.float64 if dtype == torch.float64 else torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return self.weight * x.to(dtype)


def rope_cos_sin(t, head_dim, theta, dtype):
    """(T, D) cos and sin of cat(freqs, freqs), computed in fp32 as transformers does (fp64 for the fp64 reference)."""
    cdt = torch.float64 if dtype == torch.float64 else torch.float32
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).to(cdt) / head_dim))
    freqs = torch.outer(torch.arange(t, dtype=cdt), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, cos, sin, layout):
    if layout == "rotate_half":  # transformers
        return x * cos + rotate_half(x) * sin
    # negative control: pairs (2i, 2i+1) rotated by frequency i (Meta's original checkpoints)
    half = x.shape[-1] // 2
    c, s = cos[..., :half], sin[..., :half]
    xe, xo = x[..., 0::2], x[..., 1::2]
    return torch.stack((xe * c - xo * s, xe * s + xo * c), dim=-1).flatten(-2)


def repeat_kv(x, n_rep, mapping):
    # (B, KVH, T, D) -> (B, KVH * n_rep, T, D); transformers: query head h reads kv head h // n_rep
    if n_rep == 1:
        return x
    b, kvh, t, d = x.shape
    if mapping == "modulo":  # negative control: query head h reads kv head h % KVH
        return x.repeat(1, n_rep, 1, 1)
    return x[:, :, None, :, :].expand(b, kvh, n_rep, t, d).reshape(b, kvh * n_rep, t, d)


class LlamaAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.q_proj = nn.Linear(c.dim, c.heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.dim, c.kv_heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.dim, c.kv_heads * c.head_dim, bias=False)
        self.o_proj = nn.Linear(c.heads * c.head_dim, c.dim, bias=False)

    def forward(self, x, cos, sin, mask, variant):
        c = self.c
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, -1, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, -1, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, -1, c.head_dim).transpose(1, 2)
        q = apply_rope(q, cos, sin, variant["rope"])
        k = apply_rope(k, cos, sin, variant["rope"])
        k = repeat_kv(k, c.heads // c.kv_heads, variant["kv"])
        v = repeat_kv(v, c.heads // c.kv_heads, variant["kv"])
        scores = torch.matmul(q, k.transpose(2, 3)) * c.head_dim ** -0.5 + mask
        sdt = torch.float64 if q.dtype == torch.float64 else torch.float32
        probs = F.softmax(scores, dim=-1, dtype=sdt).to(q.dtype)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, t, -1)
        return self.o_proj(out)


class LlamaMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c.dim, c.ffn, bias=False)
        self.up_proj = nn.Linear(c.dim, c.ffn, bias=False)
        self.down_proj = nn.Linear(c.ffn, c.dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn = LlamaAttention(c)
        self.mlp = LlamaMLP(c)
        self.input_layernorm = LlamaRMSNorm(c.dim, c.eps)
        self.post_attention_layernorm = LlamaRMSNorm(c.dim, c.eps)

    def forward(self, x, cos, sin, mask, variant):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, variant)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab, c.dim)
        self.layers = nn.ModuleList(LlamaDecoderLayer(c) for _ in range(c.layers))
        self.norm = LlamaRMSNorm(c.dim, c.eps)


class LlamaForCausalLM(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = LlamaModel(c)
        self.lm_head = nn.Linear(c.dim, c.vocab, bias=False)
        if c.tied:
            self.lm_head.weight = self.model.embed_tokens.weight  # tie_weights()

    def forward(self, ids, variant=None):
        variant = variant or {"rope": "rotate_half", "kv": "repeat"}
        t = ids.shape[1]
        x = self.model.embed_tokens(ids)
        cos, sin = rope_cos_sin(t, self.c.head_dim, self.c.theta, x.dtype)
        mask = torch.full((t, t), float("-inf"), dtype=x.dtype).triu(1)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask, variant)
        return self.lm_head(self.model.norm(x)).float() if x.dtype != torch.float64 else self.lm_head(self.model.norm(x))


def load_model(d, weights, dtype):
    """LlamaForCausalLM from config.json + a state dict, with from_pretrained's key and shape checks."""
    c = Cfg(f"{d}/config.json")
    m = LlamaForCausalLM(c).to(dtype)
    expected = {k: v.shape for k, v in m.state_dict().items()}
    if c.tied:
        expected.pop("lm_head.weight")
    given = {k: v for k, v in weights.items() if not k.endswith("rotary_emb.inv_freq")}
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    if c.tied and "lm_head.weight" in unexpected:
        unexpected.remove("lm_head.weight")  # transformers ties over it
        given.pop("lm_head.weight")
    if missing or unexpected:
        raise SystemExit(f"{d}: missing tensors {missing[:5]}, unexpected {unexpected[:5]}")
    for k, shape in expected.items():
        if tuple(given[k].shape) != tuple(shape):
            raise SystemExit(f"{d}: {k} has shape {list(given[k].shape)}, config.json implies {list(shape)}")
    with torch.no_grad():
        m.load_state_dict(given, strict=not c.tied)  # copy_ widens bf16 exactly
    m.eval()
    return m, c


def logits_of(m, seqs, variant=None):
    with torch.no_grad():
        return torch.cat([m(torch.tensor([s["ids"]], dtype=torch.long), variant)[0].double() for s in seqs])


# ---- comparisons -------------------------------------------------------------------------------

def compare(a, ref):
    """max |a - ref|, that over max |ref| (rel), argmax agreement; at disagreements, ref's top-2 gap."""
    d = (a - ref).abs()
    scale = ref.abs().max().item()
    max_abs = d.max().item()
    am, rm = a.argmax(-1), ref.argmax(-1)
    bad = (am != rm).nonzero().flatten().tolist()
    top2 = ref.topk(2, dim=-1).values
    gaps = [(top2[i, 0] - top2[i, 1]).item() for i in bad]
    return {"max_abs": max_abs, "rel": max_abs / scale if scale > 0 else float("inf"), "scale": scale,
            "argmax_agree": len(rm) - len(bad), "positions": len(rm), "gaps_at_disagreement": gaps}


def fmt(r):
    if r is None:
        return "n/a"
    tail = "" if not r["gaps_at_disagreement"] else f" (ref top-2 gaps there: {', '.join(f'{g:.2e}' for g in r['gaps_at_disagreement'][:4])})"
    return f"max abs {r['max_abs']:.3e}  rel {r['rel']:.3e}  argmax {r['argmax_agree']}/{r['positions']}{tail}"


def read_f32(path, n_rows, vocab):
    a = np.fromfile(path, dtype="<f4")
    if a.size != n_rows * vocab:
        raise SystemExit(f"{path}: {a.size} floats, expected {n_rows} x {vocab}")
    return torch.from_numpy(a.astype(np.float64)).reshape(n_rows, vocab)


# ---- tokenizer.json ----------------------------------------------------------------------------

def bytes_to_unicode():
    """GPT-2's byte -> printable character table (the ByteLevel alphabet)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


class ByteLevelBpe:
    """The tokenizers library's BPE for byte-level tokenizer.json files (GPT-2, Llama 3, litespark's)."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.j = json.load(f)
        model = self.j["model"]
        self.vocab = model["vocab"]
        self.inv = {i: s for s, i in self.vocab.items()}
        self.added = {t["id"]: t["content"] for t in self.j.get("added_tokens", [])}
        self.b2u = bytes_to_unicode()
        self.u2b = {c: b for b, c in self.b2u.items()}
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model.get("merges", [])]
        self.ranks = {m: r for r, m in enumerate(merges)}
        self.ignore_merges = bool(model.get("ignore_merges", False))
        self.why_not = self._split_rule()

    def _split_rule(self):
        """None when encode() covers this file; else what it does not cover."""
        j, model = self.j, self.j["model"]
        if model.get("type") != "BPE" or model.get("byte_fallback") or j.get("normalizer") is not None:
            return "not a byte-level BPE without normalizer"
        pre = j.get("pre_tokenizer") or {}
        parts = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
        self.pattern, self.prefix_space = None, False
        for p in parts:
            if p.get("type") == "Split" and p.get("behavior") == "Isolated" and not p.get("invert") and "Regex" in p.get("pattern", {}):
                self.pattern = p["pattern"]["Regex"]
            elif p.get("type") == "ByteLevel":
                self.prefix_space = bool(p.get("add_prefix_space"))
                if p.get("use_regex", True):
                    self.pattern = GPT2_PATTERN
            else:
                return f"pre-tokenizer {p.get('type')} not covered"
        if self.pattern is None:
            return "no split pattern"
        if _regex is None:
            return "the python `regex` module is absent (Debian: python3-regex)"
        self.rx = _regex.compile(self.pattern)
        return None

    def decode(self, ids):
        out = bytearray()
        for i in ids:
            if i in self.added:
                out += self.added[i].encode("utf-8")
            else:
                out += bytes(self.u2b[c] for c in self.inv[i])
        return out.decode("utf-8", errors="replace")

    def encode(self, text):
        if self.prefix_space and not text.startswith(" "):
            text = " " + text
        pieces, at = [], 0
        for m in self.rx.finditer(text):  # Isolated: matches and the gaps between them
            if m.start() > at:
                pieces.append(text[at:m.start()])
            pieces.append(m.group())
            at = m.end()
        if at < len(text):
            pieces.append(text[at:])
        ids = []
        for piece in pieces:
            word = "".join(self.b2u[b] for b in piece.encode("utf-8"))
            if self.ignore_merges and word in self.vocab:
                ids.append(self.vocab[word])
                continue
            syms = list(word)
            while len(syms) > 1:
                best = min(range(len(syms) - 1), key=lambda i: (self.ranks.get((syms[i], syms[i + 1]), math.inf), i))
                if (syms[best], syms[best + 1]) not in self.ranks:
                    break
                syms[best:best + 2] = [syms[best] + syms[best + 1]]
            ids.extend(self.vocab[s] for s in syms)
        return ids


def expected_ids(seq, encode):
    return (seq["prefix"] + list(encode(seq["text"])))[: len(seq["ids"])]


def check_roles(d, tok):
    """bos/eos/pad: the ids of config.json and generation_config.json, and the token strings of
    special_tokens_map.json and tokenizer_config.json (what AutoTokenizer reads), name the same ids
    in tokenizer.json."""
    files = {}
    for f in ("config.json", "generation_config.json", "special_tokens_map.json", "tokenizer_config.json"):
        with open(f"{d}/{f}") as fh:
            files[f] = json.load(fh)
    by_content = {c: i for i, c in tok.added.items()}
    bad, seen = [], []
    for role in ("bos", "eos", "pad"):
        ids = {f: files[f].get(f"{role}_token_id") for f in ("config.json", "generation_config.json")}
        strs = {f: files[f].get(f"{role}_token") for f in ("special_tokens_map.json", "tokenizer_config.json")}
        strs = {f: (v.get("content") if isinstance(v, dict) else v) for f, v in strs.items()}
        got = set(ids.values()) | {by_content.get(v, f"{v!r} not in tokenizer.json") if v is not None else None for v in strs.values()}
        if len(got) != 1:
            bad.append(f"{role}: {ids} {strs}")
        elif None not in got:
            seen.append(f"{role} {got.pop()}")
    return "ok (" + ", ".join(seen) + ")" if not bad else f"MISMATCH {'; '.join(bad)}"


def check_tokenizer(d, seqs):
    out = {}
    tok = ByteLevelBpe(f"{d}/tokenizer.json")
    out["special tokens"] = check_roles(d, tok)
    bad = [s["label"] for s in seqs if s["exact_text"] and tok.decode(s["ids"][len(s["prefix"]):]) != s["text"]]
    out["decode"] = "ok" if not bad else f"MISMATCH on {bad}"
    if tok.why_not:
        out["bpe"] = f"skipped: {tok.why_not}"
    else:
        bad = [s["label"] for s in seqs if expected_ids(s, tok.encode) != s["ids"]]
        out["bpe"] = "ok" if not bad else f"MISMATCH on {bad}"

    def run(name, encode):
        try:
            bad = [s["label"] for s in seqs if expected_ids(s, encode) != s["ids"]]
            out[name] = "ok" if not bad else f"MISMATCH on {bad}"
        except Exception as e:  # noqa: BLE001 - report, do not stop the logit checks
            out[name] = f"ERROR {type(e).__name__}: {e}"

    if tokenizers_lib is not None:
        t = tokenizers_lib.Tokenizer.from_file(f"{d}/tokenizer.json")
        run("tokenizers.Tokenizer.from_file", lambda s: t.encode(s, add_special_tokens=False).ids)
    if transformers is not None:
        try:
            auto = transformers.AutoTokenizer.from_pretrained(d)
            run("AutoTokenizer.from_pretrained", lambda s: auto(s, add_special_tokens=False)["input_ids"])
            fast = transformers.PreTrainedTokenizerFast(tokenizer_file=f"{d}/tokenizer.json")
            run("PreTrainedTokenizerFast", lambda s: fast(s, add_special_tokens=False)["input_ids"])
        except Exception as e:  # noqa: BLE001
            out["AutoTokenizer.from_pretrained"] = f"ERROR {type(e).__name__}: {e}"
    return out


def transformers_logits(d, seqs):
    """LlamaForCausalLM.from_pretrained(dir) in fp32 (bf16 weights widened), or an error string."""
    try:
        m = transformers.LlamaForCausalLM.from_pretrained(d, torch_dtype=torch.float32)
        m.eval()
        with torch.no_grad():
            return torch.cat([m(input_ids=torch.tensor([s["ids"]], dtype=torch.long)).logits[0].double() for s in seqs])
    except Exception as e:  # noqa: BLE001
        return f"ERROR {type(e).__name__}: {e}"


# ---- the run -----------------------------------------------------------------------------------

def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: hf_check.py CASES.json (written by bench/hf_check.ts)")
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    torch.set_num_threads(spec.get("threads") or torch.get_num_threads())
    print(f"python {sys.version.split()[0]}, torch {torch.__version__}, numpy {np.__version__}; "
          f"safetensors {'present' if st_torch else 'absent'}, tokenizers {getattr(tokenizers_lib, '__version__', 'absent')}, "
          f"transformers {getattr(transformers, '__version__', 'absent')}, regex {'present' if _regex else 'absent'}")
    results = []
    for case in spec["cases"]:
        seqs = case["seqs"]
        rows = sum(len(s["ids"]) for s in seqs)
        res = {"name": case["name"]}
        print(f"\n{case['name']}: {len(seqs)} sequences, {rows} positions ({', '.join(str(len(s['ids'])) for s in seqs)} tokens)")
        for ex in case["exports"]:
            d, dt = ex["dir"], ex["dtype"]
            weights, reader = read_safetensors(f"{d}/model.safetensors")
            stored = sorted({str(v.dtype).replace("torch.", "") for v in weights.values()})
            m32, c = load_model(d, weights, torch.float32)
            print(f"  [{dt}] {c.line()}")
            print(f"  [{dt}] model.safetensors: {len(weights)} tensors ({'/'.join(stored)}), read by {reader}; "
                  f"every name and shape as LlamaForCausalLM expects{', lm_head tied to embed_tokens' if c.tied else ''}")
            V = c.vocab
            pt32 = logits_of(m32, seqs)
            m64, _ = load_model(d, weights, torch.float64)
            pt64 = logits_of(m64, seqs)
            r = {"reader": reader, "stored": stored, "config": c.raw, "pytorch_fp32_vs_fp64": compare(pt32, pt64)}
            for path, file in ex["logits"].items():
                ls = read_f32(file, rows, V)
                r[f"litespark_{path}"] = compare(ls, pt32)
                r[f"litespark_{path}_vs_fp64"] = compare(ls, pt64)
                print(f"  [{dt}] litespark ({path} kernels) vs PyTorch fp32: {fmt(r[f'litespark_{path}'])}")
                print(f"  [{dt}]   vs PyTorch fp64: litespark {fmt(r[f'litespark_{path}_vs_fp64'])}")
            print(f"  [{dt}]   vs PyTorch fp64: PyTorch fp32 {fmt(r['pytorch_fp32_vs_fp64'])}")
            if dt == "fp32":
                ctl = {"rope_interleaved": compare(logits_of(m32, seqs, {"rope": "interleaved", "kv": "repeat"}), pt32)}
                if c.kv_heads not in (1, c.heads):
                    ctl["gqa_modulo"] = compare(logits_of(m32, seqs, {"rope": "rotate_half", "kv": "modulo"}), pt32)
                r["controls"] = ctl
                for k, v in ctl.items():
                    print(f"  [{dt}] negative control {k} vs PyTorch fp32: {fmt(v)}")
            else:
                mbf, _ = load_model(d, weights, torch.bfloat16)
                r["pytorch_pure_bf16"] = compare(logits_of(mbf, seqs), pt32)
                print(f"  [{dt}] PyTorch all-bf16 compute (torch_dtype=bfloat16) vs PyTorch fp32 of the same weights "
                      f"(informational): {fmt(r['pytorch_pure_bf16'])}")
                if ex.get("unrounded_logits"):
                    r["rounding_effect"] = compare(read_f32(ex["unrounded_logits"], rows, V), pt32)
                    print(f"  [{dt}] litespark fp32 weights (before rounding) vs PyTorch on the bf16 weights "
                          f"(what rounding costs; informational): {fmt(r['rounding_effect'])}")
            if transformers is not None:
                t = transformers_logits(d, seqs)
                r["transformers"] = t if isinstance(t, str) else compare(read_f32(ex["logits"]["litespark"], rows, V), t)
                print(f"  [{dt}] litespark vs transformers LlamaForCausalLM.from_pretrained: "
                      f"{r['transformers'] if isinstance(t, str) else fmt(r['transformers'])}")
            res[dt] = r
        res["tokenizer"] = check_tokenizer(case["exports"][0]["dir"], seqs)
        for k, v in res["tokenizer"].items():
            print(f"  tokenizer {k}: {v}")
        results.append(res)
    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
                "safetensors": st_torch is not None, "tokenizers": getattr(tokenizers_lib, "__version__", None),
                "transformers": getattr(transformers, "__version__", None), "regex": _regex is not None}
    print("HF_CHECK_JSON " + json.dumps({"versions": versions, "cases": results}), flush=True)


if __name__ == "__main__":
    main()
