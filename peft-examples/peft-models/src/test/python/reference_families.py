#!/usr/bin/python3
"""Writes tiny fixed-seed checkpoints of each model family and their logits, computed here.

The logits are an independent reference for peft4j's decoder: this script implements the published
math of each family in float64 with PyTorch (not transformers, which is not installed here, and not
peft4j's code), from the weights it writes as float32 safetensors in Hugging Face's names. Run it
with Debian's python3-torch whenever a family's math or a case changes:

    /usr/bin/python3 peft-examples/peft-models/src/test/python/reference_families.py

It rewrites src/test/resources/org/peft4j/models/llama/families/<case>/ (config.json,
model.safetensors, expected.json). ModelFamiliesReferenceTest loads each checkpoint with peft4j and
compares its float32 logits with these.

The math, per family (x: [T, H], one sequence, positions 0..T-1):
  rms(x, w)        = x / sqrt(mean(x^2) + eps) * w
  rope(v, p)       = v * cos(p f) + rotate_half(v) * sin(p f), f = inv_freq repeated twice,
                     inv_freq_i = theta^(-2i/d), scaled by rope_scaling (linear: / factor;
                     llama3: Meta's wavelength bands), rotate_half(a, b) = (-b, a)
  attention        = softmax(q k^T / sqrt(d) + mask) v, query head h reading kv head h // (H/KV)
  mask             = 0 where key j <= query i (and j > i - window for Mistral), -inf elsewhere
  layer            = h = x + o(attention(rms(x))); y = h + down(silu(gate(rms(h))) * up(rms(h)))
  llama            : biases on q/k/v/o with attention_bias, on gate/up/down with mlp_bias
  mistral          : sliding_window
  qwen2            : biases on q/k/v, none on o
  qwen3            : q = rms_d(q) and k = rms_d(k) per head (weights q_norm, k_norm of size d)
                     before rope; attention_bias on q/k/v/o
"""

import json
import math
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "resources", "org", "peft4j", "models", "llama", "families")

# Each case: the config.json fields, the seed, and the sequences whose logits are written.
CASES = {
    # Llama 3.1-style rotary scaling whose bands fall inside head_dim 16 at original context 16,
    # both bias switches, head_dim 16 != hidden / heads = 8, untied head
    "llama3": dict(
        seed=11,
        config=dict(
            model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=32,
            intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, vocab_size=80, max_position_embeddings=64,
            rms_norm_eps=1e-5, rope_theta=10000.0, hidden_act="silu",
            tie_word_embeddings=False, attention_bias=True, mlp_bias=True,
            rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0,
                              high_freq_factor=4.0, original_max_position_embeddings=16),
            bos_token_id=1, eos_token_id=[2, 3]),
        length=12),
    # linear rotary scaling, tied embeddings, no biases
    "llama-linear": dict(
        seed=12,
        config=dict(
            model_type="llama", architectures=["LlamaForCausalLM"], hidden_size=32,
            intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=4, vocab_size=80, max_position_embeddings=64,
            rms_norm_eps=1e-6, rope_theta=10000.0, hidden_act="silu",
            tie_word_embeddings=True, attention_bias=False, mlp_bias=False,
            rope_scaling=dict(type="linear", factor=2.0), bos_token_id=1, eos_token_id=2),
        length=12),
    # a window of 4 over 12 positions: from position 4 on, the window cuts keys out
    "mistral": dict(
        seed=13,
        config=dict(
            model_type="mistral", architectures=["MistralForCausalLM"], hidden_size=32,
            intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=80, max_position_embeddings=64,
            rms_norm_eps=1e-5, rope_theta=10000.0, hidden_act="silu",
            tie_word_embeddings=False, sliding_window=4, bos_token_id=1, eos_token_id=2),
        length=12),
    # q/k/v biases, none on o; tied; Qwen's inert window keys as the released configs have them
    "qwen2": dict(
        seed=14,
        config=dict(
            model_type="qwen2", architectures=["Qwen2ForCausalLM"], hidden_size=32,
            intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=80, max_position_embeddings=64,
            rms_norm_eps=1e-6, rope_theta=1000000.0, hidden_act="silu",
            tie_word_embeddings=True, use_sliding_window=False, sliding_window=64,
            max_window_layers=2, bos_token_id=1, eos_token_id=2),
        length=12),
    # per-head q/k norms, head_dim 12 independent of hidden / heads = 8 (q_proj has 48 outputs)
    "qwen3": dict(
        seed=15,
        config=dict(
            model_type="qwen3", architectures=["Qwen3ForCausalLM"], hidden_size=32,
            intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=12, vocab_size=80, max_position_embeddings=64,
            rms_norm_eps=1e-6, rope_theta=1000000.0, hidden_act="silu",
            tie_word_embeddings=True, attention_bias=False, use_sliding_window=False,
            sliding_window=None, max_window_layers=2,
            layer_types=["full_attention", "full_attention"], bos_token_id=1, eos_token_id=2),
        length=12),
}


def head_dim(c):
    return c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]


def draw_weights(c, generator):
    """Float32 weights in Hugging Face's names, large enough that attention is far from uniform."""
    h, inter, v, d = c["hidden_size"], c["intermediate_size"], c["vocab_size"], head_dim(c)
    nq, nkv = c["num_attention_heads"], c["num_key_value_heads"]
    family = c["model_type"]
    qkv_bias = c.get("attention_bias", False) or family == "qwen2"
    o_bias = c.get("attention_bias", False)
    mlp_bias = c.get("mlp_bias", False)

    def normal(*shape, std):
        return (torch.randn(*shape, generator=generator, dtype=torch.float64) * std).float()

    def norm_weight(n):
        return (1 + torch.randn(n, generator=generator, dtype=torch.float64) * 0.1).float()

    w = {"model.embed_tokens.weight": normal(v, h, std=1.0)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm_weight(h)
        w[p + "post_attention_layernorm.weight"] = norm_weight(h)
        for name, rows in (("q_proj", nq * d), ("k_proj", nkv * d), ("v_proj", nkv * d)):
            w[p + f"self_attn.{name}.weight"] = normal(rows, h, std=0.3)
            if qkv_bias:
                w[p + f"self_attn.{name}.bias"] = normal(rows, std=0.2)
        w[p + "self_attn.o_proj.weight"] = normal(h, nq * d, std=0.3)
        if o_bias:
            w[p + "self_attn.o_proj.bias"] = normal(h, std=0.2)
        if family == "qwen3":
            w[p + "self_attn.q_norm.weight"] = norm_weight(d)
            w[p + "self_attn.k_norm.weight"] = norm_weight(d)
        for name, shape in (("gate_proj", (inter, h)), ("up_proj", (inter, h)),
                            ("down_proj", (h, inter))):
            w[p + f"mlp.{name}.weight"] = normal(*shape, std=0.3)
            if mlp_bias:
                w[p + f"mlp.{name}.bias"] = normal(shape[0], std=0.2)
    w["model.norm.weight"] = norm_weight(h)
    if not c["tie_word_embeddings"]:
        w["lm_head.weight"] = normal(v, h, std=0.3)
    return w


def inv_freq(c):
    d = head_dim(c)
    freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    scaling = c.get("rope_scaling")
    if not scaling:
        return freq
    kind = scaling.get("rope_type", scaling.get("type"))
    factor = scaling["factor"]
    if kind == "linear":
        return freq / factor
    assert kind == "llama3", kind
    # Meta's Llama 3.1 bands: long wavelengths slowed by the factor, short ones kept, a blend
    # in between
    old = scaling["original_max_position_embeddings"]
    low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
    out = []
    for f in freq.tolist():
        wavelength = 2 * math.pi / f
        if wavelength < old / high:
            out.append(f)
        elif wavelength > old / low:
            out.append(f / factor)
        else:
            smooth = (old / wavelength - low) / (high - low)
            out.append((1 - smooth) * f / factor + smooth * f)
    return torch.tensor(out, dtype=torch.float64)


def rms(x, weight, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * weight


def rope(v, cos, sin):
    half = v.shape[-1] // 2
    rotated = torch.cat([-v[..., half:], v[..., :half]], dim=-1)
    return v * cos + rotated * sin


def linear(x, w, name):
    y = x @ w[name + ".weight"].double().T
    if name + ".bias" in w:
        y = y + w[name + ".bias"].double()
    return y


def logits(c, w, ids):
    t = len(ids)
    d, nq, nkv = head_dim(c), c["num_attention_heads"], c["num_key_value_heads"]
    eps = c["rms_norm_eps"]
    g = {k: v.double() for k, v in w.items()}
    x = g["model.embed_tokens.weight"][torch.tensor(ids)]
    angles = torch.arange(t, dtype=torch.float64)[:, None] * inv_freq(c)[None, :]
    angles = torch.cat([angles, angles], dim=-1)  # [T, d]
    cos, sin = torch.cos(angles), torch.sin(angles)
    i = torch.arange(t)[:, None]
    j = torch.arange(t)[None, :]
    allowed = j <= i
    window = c.get("sliding_window") if c["model_type"] == "mistral" else None
    if window:
        allowed = allowed & (j > i - window)
    mask = torch.where(allowed, 0.0, -math.inf).double()
    for layer in range(c["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        a = rms(x, g[p + "input_layernorm.weight"], eps)
        q = linear(a, g, p + "self_attn.q_proj").view(t, nq, d).transpose(0, 1)
        k = linear(a, g, p + "self_attn.k_proj").view(t, nkv, d).transpose(0, 1)
        v = linear(a, g, p + "self_attn.v_proj").view(t, nkv, d).transpose(0, 1)
        if c["model_type"] == "qwen3":
            q = rms(q, g[p + "self_attn.q_norm.weight"], eps)
            k = rms(k, g[p + "self_attn.k_norm.weight"], eps)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        group = nq // nkv
        heads = []
        for h in range(nq):
            scores = q[h] @ k[h // group].T / math.sqrt(d) + mask
            heads.append(torch.softmax(scores, dim=-1) @ v[h // group])
        context = torch.stack(heads, dim=1).reshape(t, nq * d)
        x = x + linear(context, g, p + "self_attn.o_proj")
        m = rms(x, g[p + "post_attention_layernorm.weight"], eps)
        gate = linear(m, g, p + "mlp.gate_proj")
        up = linear(m, g, p + "mlp.up_proj")
        x = x + linear(gate * torch.sigmoid(gate) * up, g, p + "mlp.down_proj")
    x = rms(x, g["model.norm.weight"], eps)
    head = g["lm_head.weight"] if "lm_head.weight" in g else g["model.embed_tokens.weight"]
    return x @ head.T


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name in sorted(tensors):
        data = tensors[name].contiguous().numpy().astype("<f4").tobytes()
        header[name] = dict(dtype="F32", shape=list(tensors[name].shape),
                            data_offsets=[offset, offset + len(data)])
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def main():
    for name, case in CASES.items():
        c = case["config"]
        generator = torch.Generator().manual_seed(case["seed"])
        w = draw_weights(c, generator)
        sequences = [
            torch.randint(0, c["vocab_size"], (case["length"],), generator=generator).tolist()
            for _ in range(2)
        ]
        out = os.path.join(OUT, name)
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "config.json"), "w") as f:
            json.dump(c, f, indent=2)
            f.write("\n")
        write_safetensors(os.path.join(out, "model.safetensors"), w)
        expected = dict(
            written_by="src/test/python/reference_families.py (float64 PyTorch "
                       + torch.__version__ + ", the families' published math)",
            ids=sequences,
            logits=[logits(c, w, ids).flatten().tolist() for ids in sequences],
        )
        with open(os.path.join(out, "expected.json"), "w") as f:
            json.dump(expected, f, indent=1)
            f.write("\n")
        print(name, "->", out)


if __name__ == "__main__":
    main()
