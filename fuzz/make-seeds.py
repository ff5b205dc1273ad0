#!/usr/bin/env python3
"""Writes the seed inputs of fuzz/corpus/TARGET/seed-* from tests/fixtures (and small hand-made files).

The fuzzer's findings are kept beside them as fuzz/corpus/TARGET/bug-*; this script never touches those.
Run from anywhere: python3 fuzz/make-seeds.py
"""
import json
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join(ROOT, "tests", "fixtures", "tiny-qwen3")
GOLDEN = os.path.join(ROOT, "tests", "fixtures", "qwen3-tokenizer")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    folder = os.path.join(CORPUS, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


def dumps(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def golden_lines(name):
    with open(os.path.join(GOLDEN, name), encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# safetensors-header: the header JSON only (the target frames it with its length and 4096 data bytes).
with open(os.path.join(TINY, "model.safetensors"), "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    real_header = f.read(n)
write("safetensors-header", "tiny-qwen3", real_header)
real = json.loads(real_header)
small, offset = {"__metadata__": real.get("__metadata__", {"format": "pt"})}, 0
for name in sorted(k for k in real if k != "__metadata__")[:4]:
    entry = real[name]
    size = {"F32": 4, "F16": 2, "BF16": 2}[entry["dtype"]]
    shape = [min(d, 4) for d in entry["shape"]]
    count = 1
    for d in shape:
        count *= d
    small[name] = {"dtype": entry["dtype"], "shape": shape, "data_offsets": [offset, offset + count * size]}
    offset += count * size
write("safetensors-header", "tiny-qwen3-small-shapes", dumps(small))
write("safetensors-header", "all-dtypes", dumps({
    "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
    "b": {"dtype": "F16", "shape": [4], "data_offsets": [24, 32]},
    "c": {"dtype": "BF16", "shape": [], "data_offsets": [32, 34]},
    "empty": {"dtype": "BF16", "shape": [0, 7], "data_offsets": [34, 34]},
    "last": {"dtype": "F32", "shape": [1015], "data_offsets": [36, 4096]},
}))
write("safetensors-header", "padded", '{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}        ')

# safetensors-index: the target provides one.safetensors (a, b) and two.safetensors (c).
write("safetensors-index", "valid", dumps({"metadata": {"total_size": 22}, "weight_map": {"a": "one.safetensors", "b": "one.safetensors", "c": "two.safetensors"}}))
write("safetensors-index", "one-shard", dumps({"weight_map": {"b": "one.safetensors"}}))
write("safetensors-index", "hf-style", json.dumps({"metadata": {"total_size": 1234}, "weight_map": {
    "model.embed_tokens.weight": "model-00001-of-00002.safetensors", "lm_head.weight": "model-00002-of-00002.safetensors"}}, indent=2))

# config / generation-config: the fixtures, and variants reaching the optional branches.
with open(os.path.join(TINY, "config.json"), "rb") as f:
    config_bytes = f.read()
config = json.loads(config_bytes)
write("config", "tiny-qwen3", config_bytes)
yarn = dict(config, rope_scaling={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768, "beta_fast": 32, "beta_slow": 1})
write("config", "yarn", json.dumps(yarn, indent=2))
bare = {k: v for k, v in config.items() if k not in ("architectures", "head_dim", "num_key_value_heads")}
write("config", "model-type-only", dumps(bare))
write("config", "other-arch", dumps(dict(config, architectures=["Qwen3MoeForCausalLM"])))
with open(os.path.join(TINY, "generation_config.json"), "rb") as f:
    write("generation-config", "tiny-qwen3", f.read())
write("generation-config", "single-eos", '{"eos_token_id": 151645, "temperature": 0.7}')
write("generation-config", "no-eos", '{"do_sample": false}')

# tokenizer-json: small hand-made tokenizers with Qwen's pipeline (the real file is 11 MB).
with open(os.path.join(TINY, "tokenizer.json"), encoding="utf-8") as f:
    tok = json.load(f)


def byte_alphabet():
    # GPT-2's byte-to-unicode table, which byte-level BPE vocabularies are written in.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def tokenizer(vocab, merges, added):
    model = {k: v for k, v in tok["model"].items() if k not in ("vocab", "merges")}
    model["vocab"], model["merges"] = vocab, merges
    return dumps({"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
                  "normalizer": tok["normalizer"], "pre_tokenizer": tok["pre_tokenizer"],
                  "post_processor": tok["post_processor"], "decoder": tok["decoder"], "model": model})


def added_tokens(first_id, contents):
    return [{"id": first_id + i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": False, "special": c.startswith("<|")} for i, c in enumerate(contents)]


alphabet = byte_alphabet()
vocab = {c: i for i, c in enumerate(alphabet)}
merges = [["Ġ", "t"], ["h", "e"], ["Ġt", "he"], ["l", "l"], ["he", "ll"]]
for a, b in merges:
    vocab.setdefault(a + b, len(vocab))
write("tokenizer-json", "bytes-only", tokenizer({c: i for i, c in enumerate(alphabet)}, [], added_tokens(256, ["<|endoftext|>"])))
write("tokenizer-json", "small", tokenizer(vocab, merges, added_tokens(len(vocab), ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>", "</tool_call>"])))
write("tokenizer-json", "small-string-merges", tokenizer(vocab, [a + " " + b for a, b in merges], added_tokens(len(vocab), ["<|im_end|>"])))
# A medium one: the first 3000 real tokens and the merges between them, added tokens renumbered to follow.
medium_vocab = {t: i for t, i in tok["model"]["vocab"].items() if i < 3000}
medium_merges = [m for m in tok["model"]["merges"]
                 if (m[0] if isinstance(m, list) else m.split(" ")[0]) in medium_vocab
                 and (m[1] if isinstance(m, list) else m.split(" ")[1]) in medium_vocab
                 and "".join(m if isinstance(m, list) else m.split(" ")) in medium_vocab]
write("tokenizer-json", "medium", tokenizer(medium_vocab, medium_merges, added_tokens(3000, [a["content"] for a in tok["added_tokens"]][:26])))

# encode: text (first byte 0 = UTF-8), from the golden tokenization cases, picked across categories.
cases = golden_lines("golden-tokenization.jsonl")
seen = {}
for case in cases:
    seen.setdefault(case["category"], []).append(case)
for category, items in sorted(seen.items()):
    for i, case in enumerate(items[:3]):
        write("encode", f"{category}-{i}", b"\x00" + case["text"].encode("utf-8"))
write("encode", "utf16-lone-surrogate", b"\x01" + "ab\ud800c\udc00".encode("utf-16-le", "surrogatepass"))

# detokenize: first byte 0/1 = keep/skip special tokens, then 3-byte ids (stored as id + 1, the target subtracts 1).
def id_bytes(ids):
    return b"".join(struct.pack("<I", i + 1)[:3] for i in ids)


for category, items in sorted(seen.items()):
    write("detokenize", category, b"\x00" + id_bytes(items[0]["ids"]))
chats = golden_lines("golden-chat-template.jsonl")
write("detokenize", "chat-skip-special", b"\x01" + id_bytes(chats[-1]["ids"]))
write("detokenize", "out-of-range", b"\x00" + id_bytes([9707, 1879, 151936]))

# jinja-template: the real Qwen3 template and small templates using each construct.
with open(os.path.join(TINY, "tokenizer_config.json"), encoding="utf-8") as f:
    write("jinja-template", "qwen3", json.load(f)["chat_template"])
write("jinja-template", "loops", "{% for m in messages if m.role != 'tool' %}{{ loop.index }}/{{ loop.length }} {{ m.role|upper }}: {{ m.content[:10]|trim }}{% if not loop.last %}, {% else %}.{% endif %}{% endfor %}")
write("jinja-template", "namespace", "{%- set ns = namespace(n=0, seen=[]) -%}{%- for m in messages[::-1] %}{% set ns.n = ns.n + 1 %}{% endfor -%}{{ ns.n * 2 ** 3 // 3 % 5 }} {{ 'a' ~ 1 ~ none }} {{ [1, 2, 3]|join('-') }} {{ {'k': 'v'}|items|list }}")
write("jinja-template", "macro", "{% macro render(m, sep='\\n') %}{{ m.role }}{{ sep }}{{ m.content|tojson }}{% endmacro %}{% for m in messages %}{{ render(m) }}{% endfor %}{% if tools %}{{ tools|tojson }}{% endif %}")
write("jinja-template", "strings", "{{ 'Hello'.startswith('He') }} {{ ' x '.strip() }} {{ 'a,b'.split(',') }} {{ 'abc'|replace('b', 'B') }} {{ '%s' }} {{ messages|length > 2 and 'long' or 'short' }} {% set x %}block{% endset %}{{ x|length }} {{ raise_exception('no') if false }}")
write("jinja-template", "break", "{% for i in range(10) %}{% if i == 3 %}{% continue %}{% endif %}{% if i > 5 %}{% break %}{% endif %}{{ i }}{% else %}none{% endfor %}{# comment #}{% raw %}{{ raw }}{% endraw %}")

# jinja-data: the golden chat-template conversations (messages, tools, flags) for the real template.
for i, chat in enumerate(chats):
    write("jinja-data", f"golden-{i}", dumps({k: chat[k] for k in ("messages", "tools", "add_generation_prompt", "enable_thinking")}))

# tool-call-parser: first byte = flags (1: starts in reasoning, 2: stop strings), 0xFF splits tokens,
# 0xFE / 0xFD stand for <think> / </think>.
FF, THINK, END = b"\xff", b"\xfe", b"\xfd"
call = b'<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
write("tool-call-parser", "think-then-call", b"\x00" + THINK + b"\nLet me check." + FF + b"\n" + END + b"\n\nSure." + FF + call)
write("tool-call-parser", "starts-in-reasoning", b"\x01" + b"reasoning\n\n" + END + b"\n\nanswer " + FF + b"<tool_" + FF + b"call>{\"name\": \"f\", \"arguments\": \"{}\"}</tool_call>")
write("tool-call-parser", "malformed-and-stop", b"\x02" + b"<tool_call>{not json}</tool_call> then </s" + FF + b"> after")
write("tool-call-parser", "unclosed", b"\x03" + b"abab" + FF + b"abc <tool_call>{\"name\": \"x\", ")

# server-request: first byte = limits (0: the defaults, 1: small ones), then a chat.completions body.
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Current weather.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
write("server-request", "minimal", b"\x00" + dumps({"model": "m", "messages": [{"role": "user", "content": "Hi"}]}).encode())
write("server-request", "every-field", b"\x00" + dumps({
    "model": "m", "stream": True, "stream_options": {"include_usage": True}, "temperature": 0.5, "top_p": 0.9, "top_k": 20,
    "min_p": 0.0, "presence_penalty": 1.5, "frequency_penalty": 0, "repetition_penalty": 1.1, "seed": 42, "max_tokens": 16,
    "max_completion_tokens": 8, "stop": ["\n\n", "END"], "n": 1, "logprobs": False, "enable_thinking": True, "return_reasoning": True,
    "chat_template_kwargs": {"enable_thinking": False}, "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "Weather in "}, {"type": "text", "text": "Paris?"}]}]}).encode())
write("server-request", "tool-round-trip", b"\x01" + dumps({
    "model": "m", "tools": [WEATHER], "tool_choice": "auto", "stop": "x", "messages": [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "reasoning_content": "Call the tool.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temperature\": 21}"}]}).encode())
write("server-request", "errors", b"\x01" + dumps({"model": "m", "n": 2, "top_k": -1, "stop": ["toolongstopstring"] * 3,
    "messages": [{"role": "wizard", "content": 1}], "response_format": {"type": "json_object"}}).encode())

# retrieval-request: first byte bit 0 = embeddings (0) or rerank (1), bit 1 = default (0) or small (1) limits, then the body.
write("retrieval-request", "embeddings-string", b"\x00" + dumps({"model": "m", "input": "hello world", "encoding_format": "base64"}).encode())
write("retrieval-request", "embeddings-every-shape", b"\x00" + dumps({"model": "m", "input": ["a text", [1, 2, 3]], "dimensions": 32, "encoding_format": "float"}).encode())
write("retrieval-request", "embeddings-token-list", b"\x02" + dumps({"model": "m", "input": [151643, 0, 17]}).encode())
write("retrieval-request", "embeddings-errors", b"\x02" + dumps({"input": ["", [], "x" * 200, 3, "a", "b"], "dimensions": 97, "encoding_format": "int8"}).encode())
write("retrieval-request", "rerank", b"\x01" + dumps({"model": "m", "query": "capital of France", "documents": ["Paris.", {"text": "Bananas."}],
    "top_n": 5, "instruction": "Find the answer", "return_documents": True}).encode())
write("retrieval-request", "rerank-errors", b"\x03" + dumps({"query": "q", "documents": ["d" * 300, 3, {"txt": "x"}, "a", "b"], "top_n": 0}).encode())

# gguf: whole small GGUF files. A complete Qwen3 model of tiny shapes (the real added tokens, a few byte tokens and
# merges, F32/BF16/F16 tensors, the real chat template) reaches the config, tokenizer, template and weight binding;
# a bare container with every value type and a quantized tensor reaches the parser's other branches.
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)


def gguf_str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_value(t, v):
    fmt = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f", BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}
    if t == STR:
        return gguf_str(v)
    if t == ARR:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gguf_value(et, i) for i in items)
    return struct.pack(fmt[t], v)


def gguf(kvs, tensors, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, dims, ggml type, data bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, t, v in kvs:
        out += gguf_str(key) + struct.pack("<I", t) + gguf_value(t, v)
    offset, data = 0, b""
    for name, dims, ggml_type, payload in tensors:
        out += gguf_str(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ggml_type, offset)
        data += payload + b"\0" * (-len(payload) % alignment)
        offset = len(data)
    out += b"\0" * (-len(out) % alignment)
    return out + data


with open(os.path.join(TINY, "tokenizer.json"), encoding="utf-8") as f:
    tok = json.load(f)
byte_tokens = [t for t, i in sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1]) if i < 256]
added = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<tool_call>", "</tool_call>"]
tokens = byte_tokens + ["Ġt", "Ġth"] + added + ["[PAD0]", "[PAD1]"]
types = [1] * (len(byte_tokens) + 2) + [3, 3, 3, 4, 4, 4, 4] + [5, 5]
with open(os.path.join(TINY, "tokenizer_config.json"), encoding="utf-8") as f:
    template = json.load(f)["chat_template"]
hidden, heads, kv_heads, head_dim, ffn, vocab = 8, 2, 1, 4, 16, len(tokens)
eot = len(byte_tokens) + 2
kvs = [
    ("general.architecture", STR, "qwen3"), ("general.alignment", U32, 32),
    ("qwen3.context_length", U32, 64), ("qwen3.embedding_length", U32, hidden), ("qwen3.block_count", U32, 1),
    ("qwen3.feed_forward_length", U32, ffn), ("qwen3.attention.head_count", U32, heads),
    ("qwen3.attention.head_count_kv", U32, kv_heads), ("qwen3.attention.key_length", U32, head_dim),
    ("qwen3.attention.value_length", U32, head_dim), ("qwen3.rope.freq_base", F32, 1e6),
    ("qwen3.attention.layer_norm_rms_epsilon", F32, 1e-6),
    ("qwen3.rope.scaling.type", STR, "yarn"), ("qwen3.rope.scaling.factor", F32, 4.0),
    ("qwen3.rope.scaling.original_context_length", U32, 16),
    ("tokenizer.ggml.model", STR, "gpt2"), ("tokenizer.ggml.pre", STR, "qwen2"),
    ("tokenizer.ggml.tokens", ARR, (STR, tokens)), ("tokenizer.ggml.token_type", ARR, (I32, types)),
    ("tokenizer.ggml.merges", ARR, (STR, ["Ġ t", "Ġt h"])),
    ("tokenizer.ggml.eos_token_id", U32, eot + 2), ("tokenizer.ggml.padding_token_id", U32, eot),
    ("tokenizer.ggml.bos_token_id", U32, eot), ("tokenizer.ggml.add_bos_token", BOOL, False),
    ("tokenizer.chat_template", STR, template),
]


def f32(n):
    return struct.pack("<%df" % n, *[(i % 7) / 8 for i in range(n)])


def bf16(n):
    return b"".join(struct.pack("<f", (i % 5) / 4)[2:] for i in range(n))


q, kv = heads * head_dim, kv_heads * head_dim
model_tensors = [
    ("token_embd.weight", [hidden, vocab], 30, bf16(hidden * vocab)),
    ("blk.0.attn_norm.weight", [hidden], 0, f32(hidden)),
    ("blk.0.attn_q.weight", [hidden, q], 30, bf16(hidden * q)),
    ("blk.0.attn_k.weight", [hidden, kv], 30, bf16(hidden * kv)),
    ("blk.0.attn_v.weight", [hidden, kv], 1, struct.pack("<%de" % (hidden * kv), *[0.5] * (hidden * kv))),
    ("blk.0.attn_output.weight", [q, hidden], 0, f32(q * hidden)),
    ("blk.0.attn_q_norm.weight", [head_dim], 0, f32(head_dim)),
    ("blk.0.attn_k_norm.weight", [head_dim], 0, f32(head_dim)),
    ("blk.0.ffn_norm.weight", [hidden], 0, f32(hidden)),
    ("blk.0.ffn_gate.weight", [hidden, ffn], 30, bf16(hidden * ffn)),
    ("blk.0.ffn_up.weight", [hidden, ffn], 30, bf16(hidden * ffn)),
    ("blk.0.ffn_down.weight", [ffn, hidden], 30, bf16(ffn * hidden)),
    ("output_norm.weight", [hidden], 0, f32(hidden)),
]
write("gguf", "tiny-qwen3-shapes", gguf(kvs, model_tensors))
write("gguf", "untied-no-template", gguf([kv for kv in kvs if kv[0] != "tokenizer.chat_template"],
                                         model_tensors + [("output.weight", [hidden, vocab], 0, f32(hidden * vocab))]))


# The same model with hidden size 32 and its matrices in the 32-value block formats the int8 kernels run (Q5_0,
# Q4_0, Q8_0): blocks of a finite f16 scale and patterned bits, so the fuzzer starts from a quantized model that binds.
def blocks(ggml_type, rows, cols):
    tail = {2: 16, 6: 20, 8: 32}[ggml_type]  # Q4_0: nibbles; Q5_0: fifth-bit word and nibbles; Q8_0: int8 quants
    return b"".join(struct.pack("<e", 0.125) + bytes((b * 37 + j * 11) & 0xFF for j in range(tail))
                    for b in range(rows * cols // 32))


hidden_q, head_dim_q, ffn_q = 32, 16, 32
q_q, kv_q = heads * head_dim_q, kv_heads * head_dim_q
kvs_q = [(k, t, {"qwen3.embedding_length": hidden_q, "qwen3.feed_forward_length": ffn_q,
                 "qwen3.attention.key_length": head_dim_q, "qwen3.attention.value_length": head_dim_q}.get(k, v))
         for k, t, v in kvs]
write("gguf", "quantized-tiny-qwen3", gguf(kvs_q, [
    ("token_embd.weight", [hidden_q, vocab], 8, blocks(8, vocab, hidden_q)),
    ("blk.0.attn_norm.weight", [hidden_q], 0, f32(hidden_q)),
    ("blk.0.attn_q.weight", [hidden_q, q_q], 6, blocks(6, q_q, hidden_q)),
    ("blk.0.attn_k.weight", [hidden_q, kv_q], 6, blocks(6, kv_q, hidden_q)),
    ("blk.0.attn_v.weight", [hidden_q, kv_q], 2, blocks(2, kv_q, hidden_q)),
    ("blk.0.attn_output.weight", [q_q, hidden_q], 6, blocks(6, hidden_q, q_q)),
    ("blk.0.attn_q_norm.weight", [head_dim_q], 0, f32(head_dim_q)),
    ("blk.0.attn_k_norm.weight", [head_dim_q], 0, f32(head_dim_q)),
    ("blk.0.ffn_norm.weight", [hidden_q], 0, f32(hidden_q)),
    ("blk.0.ffn_gate.weight", [hidden_q, ffn_q], 6, blocks(6, ffn_q, hidden_q)),
    ("blk.0.ffn_up.weight", [hidden_q, ffn_q], 8, blocks(8, ffn_q, hidden_q)),
    ("blk.0.ffn_down.weight", [ffn_q, hidden_q], 6, blocks(6, hidden_q, ffn_q)),
    ("output_norm.weight", [hidden_q], 0, f32(hidden_q)),
]))

# Hidden size 256, so that rows fill the 256-value K formats (Q2_K to Q6_K): the embedding (and so the
# tied output head) in Q3_K, as the untied embeddings of Qwen's 8B and larger Q3_K_M files are.
def super_blocks(ggml_type, rows, cols):
    size, halves = {10: (84, [80, 82]), 11: (110, [108]), 12: (144, [0, 2]), 13: (176, [0, 2]), 14: (210, [208])}[ggml_type]
    out = bytearray()
    for b in range(rows * cols // 256):
        block = bytearray((b * 37 + j * 11) & 0xFF for j in range(size))
        for at in halves:
            block[at:at + 2] = struct.pack("<e", 0.125)
        out += block
    return bytes(out)


hidden_k = 256
kvs_k = [(k, t, {"qwen3.embedding_length": hidden_k, "qwen3.feed_forward_length": ffn_q,
                 "qwen3.attention.key_length": head_dim_q, "qwen3.attention.value_length": head_dim_q}.get(k, v))
         for k, t, v in kvs]
write("gguf", "k-quantized-tiny-qwen3", gguf(kvs_k, [
    ("token_embd.weight", [hidden_k, vocab], 11, super_blocks(11, vocab, hidden_k)),
    ("blk.0.attn_norm.weight", [hidden_k], 0, f32(hidden_k)),
    ("blk.0.attn_q.weight", [hidden_k, q_q], 11, super_blocks(11, q_q, hidden_k)),
    ("blk.0.attn_k.weight", [hidden_k, kv_q], 12, super_blocks(12, kv_q, hidden_k)),
    ("blk.0.attn_v.weight", [hidden_k, kv_q], 13, super_blocks(13, kv_q, hidden_k)),
    ("blk.0.attn_output.weight", [q_q, hidden_k], 8, blocks(8, hidden_k, q_q)),
    ("blk.0.attn_q_norm.weight", [head_dim_q], 0, f32(head_dim_q)),
    ("blk.0.attn_k_norm.weight", [head_dim_q], 0, f32(head_dim_q)),
    ("blk.0.ffn_norm.weight", [hidden_k], 0, f32(hidden_k)),
    ("blk.0.ffn_gate.weight", [hidden_k, ffn_q], 14, super_blocks(14, ffn_q, hidden_k)),
    ("blk.0.ffn_up.weight", [hidden_k, ffn_q], 10, super_blocks(10, ffn_q, hidden_k)),
    ("blk.0.ffn_down.weight", [ffn_q, hidden_k], 8, blocks(8, hidden_k, ffn_q)),
    ("output_norm.weight", [hidden_k], 0, f32(hidden_k)),
]))

write("gguf", "all-value-types", gguf([
    ("u8", U8, 200), ("i8", I8, -3), ("u16", U16, 60000), ("i16", I16, -300), ("u32", U32, 1 << 31), ("i32", I32, -5),
    ("f32", F32, 0.5), ("bool", BOOL, True), ("str", STR, "héllo"), ("u64", U64, 1 << 63), ("i64", I64, -(1 << 40)),
    ("f64", F64, 1e-300), ("nested", ARR, (ARR, [(U8, [1, 2]), (STR, ["x"])])), ("ints", ARR, (I64, [1, -2, 1 << 35])),
], [("q8", [32, 2], 8, b"\x01" * 68), ("q4k", [256], 12, b"\x02" * 144), ("empty", [0, 4], 0, b"")]))
