"""Writes the seed corpora in fuzz/corpus/ (committed; rerun after changing this file).

The `regress-*` files, inputs that once crashed a target, are kept as they are.

Seeds are small, valid inputs that reach deep into each parser, so that mutations start from
somewhere interesting. The GGUF seeds come twice: as files, and packed as `src/fuzz.rs`'s
`unpack` records with one record per header field, so that repeating a field is a small
mutation. Usage: python3 fuzz/seeds.py
"""

import json
import pathlib
import shutil
import struct

ROOT = pathlib.Path(__file__).resolve().parent / "corpus"


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def gstr(s):
    b = s.encode()
    return [u64(len(b)), b]


def header(n_tensors, n_kv):
    return [b"GGUF", u32(3), u64(n_tensors), u64(n_kv)]


def kv(key, ty, *value):
    return [*gstr(key), u32(ty), *value]


def sample():
    """A llama-like header: strings, integers, a token array, a template, two F32 tensors."""
    fields = header(2, 6)
    fields += kv("general.architecture", 8, *gstr("llama"))
    fields += kv("general.file_type", 4, u32(15))
    fields += kv("llama.context_length", 4, u32(2048))
    fields += kv("general.alignment", 4, u32(32))
    tokens = [u32(8), u64(6)]
    for t in "abcdef":
        tokens += gstr(t)
    fields += kv("tokenizer.ggml.tokens", 9, *tokens)
    fields += kv("tokenizer.chat_template", 8, *gstr("{{ messages }}"))
    offset = 0
    for name, dims in [("token_embd.weight", [4, 8]), ("output_norm.weight", [4])]:
        fields += [*gstr(name), u32(len(dims)), *[u64(d) for d in dims], u32(0), u64(offset)]
        offset += 4 * eval("*".join(map(str, dims)))
    return fields, offset


def every_type():
    """One key of each value type, arrays of each element type, and an array of arrays."""
    fields = header(0, 15)
    scalars = [
        (0, b"\x01"),
        (1, b"\xff"),
        (2, b"\x01\x02"),
        (3, b"\xfe\xff"),
        (4, u32(7)),
        (5, u32(0xFFFFFFFF)),
        (6, struct.pack("<f", 1.5)),
        (7, b"\x01"),
        (10, u64(1 << 40)),
        (11, u64((1 << 64) - 1)),
        (12, struct.pack("<d", -2.5)),
    ]
    for ty, raw in scalars:
        fields += kv(f"t{ty}", ty, raw)
    fields += kv("t8", 8, *gstr("text"))
    fields += kv("a4", 9, u32(4), u64(3), u32(1), u32(2), u32(3))
    fields += kv("a8", 9, u32(8), u64(2), *gstr("x"), *gstr("yz"))
    # [[1, 2], []]: two arrays of u8.
    fields += kv("a9", 9, u32(9), u64(2), u32(0), u64(2), b"\x01", b"\x02", u32(0), u64(0))
    return fields


def nested(levels):
    """One key whose value is `levels` arrays, each holding the next, around no u32s."""
    fields = header(0, 1) + [*gstr("key"), u32(9)]
    for _ in range(levels - 1):
        fields += [u32(9) + u64(1)]
    fields += [u32(4) + u64(0)]
    return fields


def pack(fields):
    """`unpack` records, one per field: flags 0 (written once), the length, the field's bytes."""
    out = b""
    for f in fields:
        for i in range(0, len(f), 255):
            chunk = f[i : i + 255]
            out += bytes([0, len(chunk)]) + chunk
    return out


def write(target, name, data):
    d = ROOT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def main():
    # Crashes found by fuzzing (`regress-*`) stay; every other seed is written afresh.
    for f in ROOT.glob("*/*"):
        if not f.name.startswith("regress-"):
            f.unlink()

    fields, data_len = sample()
    body = b"".join(fields)
    body += b"\0" * (-len(body) % 32 + data_len)
    write("gguf", "sample.gguf", body)
    write("gguf", "every-type.gguf", b"".join(every_type()))
    write("gguf", "nested-2.gguf", b"".join(nested(2)))
    write("gguf", "sample.packed", pack(fields + [b"\0" * (-len(b"".join(fields)) % 32 + data_len)]))
    write("gguf", "every-type.packed", pack(every_type()))
    write("gguf", "nested-3.packed", pack(nested(3)))

    header_json = {
        "__metadata__": {"format": "mlx"},
        "a": {"dtype": "F16", "shape": [2, 3], "data_offsets": [0, 12]},
        "b": {"dtype": "U32", "shape": [4], "data_offsets": [12, 28]},
        "c": {"dtype": "Q4", "shape": [], "data_offsets": [28, 28]},
    }
    h = json.dumps(header_json, separators=(",", ":")).encode()
    write("safetensors", "mlx.safetensors", u64(len(h)) + h + b"\0" * 28)
    h = b'{"x":{"dtype":"BF16","shape":[1,1,2],"data_offsets":[0,4]}}'
    write("safetensors", "plain.safetensors", u64(len(h)) + h + b"\0" * 4)

    digest = "sha256:" + "ab" * 32
    layer = {"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": 12}
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "digest": "sha256:" + "cd" * 32,
            "size": 2,
        },
        "layers": [
            layer,
            {**layer, "mediaType": "application/vnd.ollama.image.template", "from": "a<b>&c\u2028"},
            {**layer, "mediaType": "application/vnd.ollama.image.adapter", "name": "x/y"},
        ],
    }
    write("manifest", "manifest.json", json.dumps(manifest))
    write(
        "manifest",
        "config.json",
        json.dumps(
            {
                "model_format": "gguf",
                "model_family": "llama",
                "model_families": ["llama"],
                "model_type": "1M",
                "file_type": "F32",
                "capabilities": ["completion"],
                "extra": {"kept": [1, 2.5, None]},
            }
        ),
    )
    write("manifest", "hf-reference.json", json.dumps({"repo_id": "mlx-community/Qwen3-0.6B-4bit", "revision": "0123abcd"}))

    names = [
        "llama3.2",
        "llama3.2:1b",
        "mlx-community/Llama-3.2-1B-Instruct-4bit",
        "hf.co/bartowski/X-GGUF:Q4_K_M",
        "https://registry.ollama.ai/library/x:y",
        "localhost:5000/ns/m:t",
        "Org/Repo:Latest",
    ]
    for i, n in enumerate(names):
        write("model_name", f"{i}.txt", n)

    for i, d in enumerate(["sha256:" + "0123456789abcdef" * 4, "sha256-" + "ABCDEF0123456789" * 4, "sha256:../../etc/passwd"]):
        write("digest", f"{i}.txt", d)

    write(
        "modelfile",
        "full.modelfile",
        'FROM llama3.2\nPARAMETER temperature 0.7\nPARAMETER stop "<|eot|>"\nPARAMETER num_ctx 4096\n'
        'TEMPLATE """{{ .System }}\n{{ .Prompt }}"""\nSYSTEM "You are terse."\n'
        "MESSAGE user hi\nMESSAGE assistant hello\nLICENSE MIT\nADAPTER ./a.gguf\nREQUIRES 0.6.0\n"
        "# a comment\nparameter top_k 40\n",
    )
    write("modelfile", "utf16.modelfile", "\ufeffFROM x\nSYSTEM s\n".encode("utf-16-le"))

    write(
        "template",
        "legacy.gotmpl",
        "{{ if .System }}<|system|>{{ .System }}{{ end }}{{ if .Prompt }}<|user|>{{ .Prompt }}{{ end }}"
        "<|assistant|>{{ .Response }}",
    )
    write(
        "template",
        "messages.gotmpl",
        "{{- range $i, $m := .Messages }}{{- $last := eq (len (slice $.Messages $i)) 1 }}"
        '{{ if eq .Role "user" }}U: {{ .Content }}{{ else if eq .Role "tool" }}T: {{ .Content }}'
        "{{ else }}A: {{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}"
        "{{ range .ToolCalls }}{{ json .Function.Arguments }}{{ end }}{{ end }}"
        "{{ if and $last (ne .Role \"assistant\") }}A:{{ end }}{{ end }}"
        '{{ define "x" }}{{ printf "%q %v %5.2f" . 1 2.5 }}{{ end }}{{ template "x" .Tools }}'
        "{{ with .Suffix }}<fim>{{ . }}{{ end }}{{ if .Think }}{{ .ThinkLevel }}{{ end }}",
    )
    shutil.copy(ROOT.parent.parent / "tests/fixtures/templates/qwen3.gotmpl", ROOT / "template/qwen3.gotmpl")


if __name__ == "__main__":
    main()
