#!/usr/bin/python3
"""Writes LoRA adapters as PaddleNLP saves them, with the same adapter in Hugging Face's format.

Paddle cannot be installed where peft4j is built, so these files follow the sources rather than a
Paddle run:

* paddle/framework/io.py: paddle.save(state_dict, path, protocol=4) pickles, with
  pickle.Pickler(f, protocol), the dict _build_saved_state_dict makes: each tensor as
  np.array(tensor.cpu()) (a bfloat16 tensor becomes a uint16 array of the same bits) plus
  "StructuredToParameterName@@" -> {structured name: parameter name}.
* paddlenlp/peft/lora/lora_model.py: save_pretrained writes get_trainable_state_dict() (the
  causal LM's state_dict entries that train: "llama.layers.0.self_attn.q_proj.lora_A" ...) to
  lora_model_state.pdparams, or, on a tensor-parallel model without merge_tensor_parallel, each
  rank's part to lora_model_state.tpRR.pdparams (_add_variant); lora_config.json is
  LoRAConfig.save_pretrained's asdict() plus "scaling", sorted keys, indent 2.
* paddlenlp/peft/lora/lora_layers.py and lora_model.py: lora_A is [in, r], lora_B is [r, out];
  a ColumnParallelLoRALinear (q/k/v/gate/up) holds lora_B split along out, a
  RowParallelLoRALinear (o/down) lora_A split along in; split_or_merge_func splits contiguously
  (np.split on the last axis for columns, the first for rows).
* paddlenlp/trainer/unified_checkpoint/load_save_single_card.py: the unified checkpoint writes
  peft_model-00001-of-00001.safetensors with safetensors.numpy (bfloat16 as U16, metadata
  {"format": "np"}) and peft_model.safetensors.index.json {"metadata", "weight_map", "type"}.

Run with Debian's /usr/bin/python3 (numpy 1.x) from this directory; it rewrites
../resources/paddle/. The adapter fits the tiny Llama the Java tests build:
LlamaConfig.builder().setSizes(32, 64, 2, 4, 2, 64) (hidden 32, intermediate 64, 2 layers,
4 heads, 2 kv heads, vocabulary 64).
"""

import json
import os
import pickle
import shutil
import struct
from collections import OrderedDict

import numpy as np

HIDDEN, INTER, LAYERS, HEADS, KV, VOCAB = 32, 64, 2, 4, 2, 64
HEAD_DIM = HIDDEN // HEADS
R, ALPHA = 4, 8
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "paddle")

# (module, in, out) of every adapted Linear, in the order PaddleNLP's state_dict lists them
MODULES = [
    ("self_attn.q_proj", HIDDEN, HEADS * HEAD_DIM),
    ("self_attn.k_proj", HIDDEN, KV * HEAD_DIM),
    ("self_attn.v_proj", HIDDEN, KV * HEAD_DIM),
    ("self_attn.o_proj", HEADS * HEAD_DIM, HIDDEN),
    ("mlp.gate_proj", HIDDEN, INTER),
    ("mlp.up_proj", HIDDEN, INTER),
    ("mlp.down_proj", INTER, HIDDEN),
]
COLUMN = {"q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"}


def bf16_round(x):
    """Rounds float32 to the nearest bfloat16 (ties to even); returns float32 and the bits."""
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    half = bits.astype(np.uint16)
    return (half.astype(np.uint32) << 16).view(np.float32), half


def adapter():
    """Paddle-layout tensors; values bfloat16-exact so that every variant holds the same adapter."""
    rng = np.random.default_rng(16)
    state = OrderedDict()
    for layer in range(LAYERS):
        for module, fan_in, fan_out in MODULES:
            key = "llama.layers.%d.%s" % (layer, module)
            a = rng.standard_normal((fan_in, R)).astype(np.float32) * 0.2
            b = rng.standard_normal((R, fan_out)).astype(np.float32) * 0.2
            state[key + ".lora_A"] = bf16_round(a)[0]
            state[key + ".lora_B"] = bf16_round(b)[0]
    return state


def paddle_save(state, path, protocol=4):
    """What paddle.save does with a state dict of tensors (io.py _build_saved_state_dict)."""
    saved = {}
    names = {}
    for i, (key, value) in enumerate(state.items()):
        saved[key] = np.array(value)
        names[key] = "lora_linear_%d.w_%d" % (i // 2, i % 2)
    saved["StructuredToParameterName@@"] = names
    with open(path, "wb") as f:
        pickle.Pickler(f, protocol).dump(saved)


def lora_config(degree=-1, dtype="float32"):
    config = {
        "base_model_name_or_path": None,
        "do_qat": False,
        "dtype": dtype,
        "enable_lora_list": None,
        "head_dim": None,
        "lora_alpha": ALPHA,
        "lora_dropout": 0.0,
        "lora_plus_scale": 1.0,
        "merge_weights": False,
        "r": R,
        "rslora": False,
        "target_modules": [".*q_proj.*", ".*k_proj.*", ".*v_proj.*", ".*o_proj.*",
                           ".*gate_proj.*", ".*up_proj.*", ".*down_proj.*"],
        "tensor_parallel_degree": degree,
        "trainable_bias": None,
        "trainable_modules": None,
        "use_quick_lora": False,
        "scaling": ALPHA / R,
    }
    return json.dumps(config, indent=2, sort_keys=True)


def write_dir(name, files):
    path = os.path.join(OUT, name)
    os.makedirs(path, exist_ok=True)
    for file, text in files.items():
        with open(os.path.join(path, file), "w") as f:
            f.write(text)
    return path


def safetensors(path, tensors, metadata):
    """The safetensors layout: u64 header length, JSON header padded to 8, raw little-endian data."""
    header = {"__metadata__": metadata}
    offset = 0
    blobs = []
    for key, (dtype, array) in tensors.items():
        data = array.astype(array.dtype.newbyteorder("<")).tobytes()
        header[key] = {"dtype": dtype, "shape": list(array.shape),
                       "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def hf_reference(state):
    """The same adapter as Hugging Face PEFT saves it: transposed, under base_model.model.model."""
    tensors = OrderedDict()
    for key, value in state.items():
        hf = "base_model.model.model." + key[len("llama."):] + ".weight"
        tensors[hf] = ("F32", np.ascontiguousarray(value.T))
    path = write_dir("hf", {"adapter_config.json": json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": R, "lora_alpha": ALPHA,
        "lora_dropout": 0.0, "bias": "none",
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                           "down_proj"]}, indent=2)})
    safetensors(os.path.join(path, "adapter_model.safetensors"), tensors, {"format": "pt"})


def tp_shards(state, degree):
    """Each rank's part, as ColumnParallel/RowParallel LoRA layers hold them."""
    shards = [OrderedDict() for _ in range(degree)]
    for key, value in state.items():
        layer = key.split(".")[-2]
        if key.endswith(".lora_B") and layer in COLUMN:
            parts = np.split(value, degree, axis=-1)
        elif key.endswith(".lora_A") and layer not in COLUMN:
            parts = np.split(value, degree, axis=0)
        else:
            parts = [value] * degree
        for rank in range(degree):
            shards[rank][key] = np.ascontiguousarray(parts[rank])
    return shards


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    state = adapter()
    hf_reference(state)

    path = write_dir("lora", {"lora_config.json": lora_config()})
    paddle_save(state, os.path.join(path, "lora_model_state.pdparams"))

    path = write_dir("lora_protocol2", {"lora_config.json": lora_config()})
    paddle_save(state, os.path.join(path, "lora_model_state.pdparams"), protocol=2)

    path = write_dir("lora_tp2", {"lora_config.json": lora_config(degree=2)})
    for rank, shard in enumerate(tp_shards(state, 2)):
        paddle_save(shard, os.path.join(path, "lora_model_state.tp%02d.pdparams" % rank))

    # bfloat16 training: the tensors reach numpy as uint16 arrays of the bits
    bits = OrderedDict((k, bf16_round(v)[1]) for k, v in state.items())
    path = write_dir("lora_bf16", {"lora_config.json": lora_config(dtype="bfloat16")})
    paddle_save(bits, os.path.join(path, "lora_model_state.pdparams"))

    weights = "peft_model-00001-of-00001.safetensors"
    index = {"metadata": {"total_size": sum(v.size * 2 for v in bits.values())},
             "weight_map": {k: weights for k in bits}, "type": "lora"}
    path = write_dir("lora_safetensors", {
        "lora_config.json": lora_config(dtype="bfloat16"),
        "peft_model.safetensors.index.json": json.dumps(index, indent=4)})
    safetensors(os.path.join(path, weights),
                OrderedDict((k, ("U16", v)) for k, v in bits.items()), {"format": "np"})

    write_prefixes()


# Prefix tuning (paddlenlp/peft/prefix/prefix_model.py, prefix_config.py): the encoder is
# nn.Sequential(Embedding, Dropout) or, with prefix_projection, nn.Sequential(Embedding(P, H d),
# Linear(H d, proj), Tanh, Linear(proj, 2 L H d), Dropout), H = multi_query_group_num (the kv
# heads); save_pretrained pickles prefix_encoder.state_dict(): "0.weight", "1.weight", "1.bias",
# "3.weight", "3.bias". llama_postprocess_past_key_value reads the output [P, 2L, H, d] as all
# layers' keys, then all layers' values; Hugging Face alternates key and value per layer.
PREFIX_TOKENS, PROJ = 4, 8


def prefix_config(projection, degree=-1):
    return json.dumps({
        "dtype": "float32", "hidden_size": HIDDEN, "multi_query_group_num": KV,
        "num_attention_heads": HEADS, "num_hidden_layers": LAYERS,
        "num_prefix_tokens": PREFIX_TOKENS, "prefix_dropout": 0.0,
        "prefix_projection": projection, "prefix_projection_hidden_size": PROJ if projection else None,
        "tensor_parallel_degree": degree}, indent=2, sort_keys=True)


def hf_prompt(paddle_prefix):
    """[P, 2 (k, v), L, H d] -> [P, L, 2, H d]: Hugging Face's prompt_embeddings."""
    p = paddle_prefix.reshape(PREFIX_TOKENS, 2, LAYERS, -1).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(p.reshape(PREFIX_TOKENS, -1)).astype(np.float32)


def write_prefixes():
    rng = np.random.default_rng(61)
    width = 2 * LAYERS * KV * HEAD_DIM
    table = rng.standard_normal((PREFIX_TOKENS, width)).astype(np.float32)
    path = write_dir("prefix", {"prefix_config.json": prefix_config(False)})
    paddle_save(OrderedDict([("0.weight", table)]), os.path.join(path, "prefix_model_state.pdparams"))
    path = write_dir("prefix_tp2", {"prefix_config.json": prefix_config(False, degree=2)})
    for rank, part in enumerate(np.split(table, 2, axis=0)):  # VocabParallelEmbedding: rows
        paddle_save(OrderedDict([("0.weight", np.ascontiguousarray(part))]),
                    os.path.join(path, "prefix_model_state.tp%02d.pdparams" % rank))
    path = write_dir("prefix_hf", {"prefix_config.json": prefix_config(False)})
    safetensors(os.path.join(path, "adapter_model.safetensors"),
                {"prompt_embeddings": ("F32", hf_prompt(table))}, {"format": "pt"})

    state = OrderedDict([
        ("0.weight", rng.standard_normal((PREFIX_TOKENS, KV * HEAD_DIM)).astype(np.float32)),
        ("1.weight", (rng.standard_normal((KV * HEAD_DIM, PROJ)) * 0.3).astype(np.float32)),
        ("1.bias", (rng.standard_normal(PROJ) * 0.1).astype(np.float32)),
        ("3.weight", (rng.standard_normal((PROJ, width)) * 0.3).astype(np.float32)),
        ("3.bias", (rng.standard_normal(width) * 0.1).astype(np.float32)),
    ])
    path = write_dir("prefix_projection", {"prefix_config.json": prefix_config(True)})
    paddle_save(state, os.path.join(path, "prefix_model_state.pdparams"))
    w = {k: v.astype(np.float64) for k, v in state.items()}
    out = np.tanh(w["0.weight"] @ w["1.weight"] + w["1.bias"]) @ w["3.weight"] + w["3.bias"]
    path = write_dir("prefix_projection_hf", {"prefix_config.json": prefix_config(False)})
    safetensors(os.path.join(path, "adapter_model.safetensors"),
                {"prompt_embeddings": ("F32", hf_prompt(out))}, {"format": "pt"})



if __name__ == "__main__":
    main()
