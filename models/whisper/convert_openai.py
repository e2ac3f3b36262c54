"""Turn a CTranslate2 Whisper model (the analyzer's bundled base, or any faster-whisper directory) back into an
openai-whisper checkpoint: the same weights under openai-whisper's parameter names, loadable with
`whisper.load_model(path)`.

    python models/whisper/convert_openai.py [CT2_DIR] [--out ~/.cache/analyzer/models/whisper-base-openai.pt]

CT2_DIR defaults to the bundled base model (joined into the cache on first use). CTranslate2 stores each
attention's projections fused (self-attention: query, key and value in one matrix; cross-attention: key and
value), and has no key bias where Whisper has none (its fused bias holds zeros there); they are split back. The
file format read here is CTranslate2's `model.bin` (version 6: a header, then each variable's name, shape,
type and bytes, then aliases), as `ctranslate2/specs/model_spec.py` writes it.
"""

from __future__ import annotations

import argparse
import json
import re
import struct
from pathlib import Path

import numpy as np
import torch

DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}


def read_ct2(model_bin: Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 model.bin, aliases resolved."""
    with open(model_bin, "rb") as handle:
        def number(fmt: str):
            return struct.unpack(fmt, handle.read(struct.calcsize(fmt)))[0]

        def string() -> str:
            return handle.read(number("H"))[:-1].decode("utf-8")

        version = number("I")
        if version < 5:
            raise ValueError(f"{model_bin}: CTranslate2 model format {version} is not supported (5 or later)")
        spec, _revision = string(), number("I")
        if spec != "WhisperSpec":
            raise ValueError(f"{model_bin}: a {spec}, not a Whisper model")
        variables = {}
        for _ in range(number("I")):
            name = string()
            shape = [number("I") for _ in range(number("B"))]
            dtype, size = number("B"), number("I")
            if dtype not in DTYPES:
                raise ValueError(f"{model_bin}: {name} has data type {dtype}; quantized models cannot be converted")
            variables[name] = np.frombuffer(handle.read(size), dtype=DTYPES[dtype]).reshape(shape)
        for _ in range(number("I")):
            alias, target = string(), string()
            variables[alias] = variables[target]
    return variables


def to_openai(variables: dict[str, np.ndarray]) -> tuple[dict, dict[str, torch.Tensor]]:
    """openai-whisper's `dims` and state dict from CTranslate2's Whisper variables."""
    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(np.array(variables[name], dtype=np.float16))

    def layers(side: str) -> int:
        return len({m.group(1) for k in variables if (m := re.match(rf"{side}/layer_(\d+)/", k))})

    state: dict[str, torch.Tensor] = {}

    def linear(target: str, source: str, rows: slice | None = None, bias: bool = True) -> None:
        weight, offset = tensor(f"{source}/weight"), tensor(f"{source}/bias")
        state[f"{target}.weight"] = weight[rows] if rows else weight
        if bias:
            state[f"{target}.bias"] = offset[rows] if rows else offset

    def norm(target: str, source: str) -> None:
        state[f"{target}.weight"], state[f"{target}.bias"] = tensor(f"{source}/gamma"), tensor(f"{source}/beta")

    width = variables["encoder/conv2/weight"].shape[0]
    split = [slice(0, width), slice(width, 2 * width), slice(2 * width, 3 * width)]
    for side, count in (("encoder", layers("encoder")), ("decoder", layers("decoder"))):
        for i in range(count):
            block, source = f"{side}.blocks.{i}", f"{side}/layer_{i}"
            norm(f"{block}.attn_ln", f"{source}/self_attention/layer_norm")
            linear(f"{block}.attn.query", f"{source}/self_attention/linear_0", split[0])
            linear(f"{block}.attn.key", f"{source}/self_attention/linear_0", split[1], bias=False)
            linear(f"{block}.attn.value", f"{source}/self_attention/linear_0", split[2])
            linear(f"{block}.attn.out", f"{source}/self_attention/linear_1")
            if side == "decoder":
                norm(f"{block}.cross_attn_ln", f"{source}/attention/layer_norm")
                linear(f"{block}.cross_attn.query", f"{source}/attention/linear_0")
                linear(f"{block}.cross_attn.key", f"{source}/attention/linear_1", split[0], bias=False)
                linear(f"{block}.cross_attn.value", f"{source}/attention/linear_1", split[1])
                linear(f"{block}.cross_attn.out", f"{source}/attention/linear_2")
            norm(f"{block}.mlp_ln", f"{source}/ffn/layer_norm")
            linear(f"{block}.mlp.0", f"{source}/ffn/linear_0")
            linear(f"{block}.mlp.2", f"{source}/ffn/linear_1")
    for conv in ("conv1", "conv2"):
        linear(f"encoder.{conv}", f"encoder/{conv}")
    state["encoder.positional_embedding"] = tensor("encoder/position_encodings/encodings")
    norm("encoder.ln_post", "encoder/layer_norm")
    state["decoder.token_embedding.weight"] = tensor("decoder/embeddings/weight")
    state["decoder.positional_embedding"] = tensor("decoder/position_encodings/encodings")
    norm("decoder.ln", "decoder/layer_norm")

    dims = {
        "n_mels": int(variables["encoder/conv1/weight"].shape[1]),
        "n_audio_ctx": int(variables["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(width),
        "n_audio_head": int(variables["encoder/num_heads"]),
        "n_audio_layer": layers("encoder"),
        "n_vocab": int(variables["decoder/embeddings/weight"].shape[0]),
        "n_text_ctx": int(variables["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(variables["decoder/embeddings/weight"].shape[1]),
        "n_text_head": int(variables["decoder/num_heads"]),
        "n_text_layer": layers("decoder"),
    }
    return dims, state


def convert(ct2_dir: Path, out: Path) -> Path:
    dims, state = to_openai(read_ct2(ct2_dir / "model.bin"))
    config = json.loads((ct2_dir / "config.json").read_text(encoding="utf-8"))
    # kept beside openai-whisper's own keys (which load_model reads; it ignores the rest): the cross-attention
    # heads that time words, which openai-whisper knows only for its own named checkpoints
    checkpoint = {"dims": dims, "model_state_dict": state, "alignment_heads": config.get("alignment_heads")}
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    torch.save(checkpoint, partial)
    partial.replace(out)
    return out


def main() -> None:
    from analyzer.config import default_cache_dir
    from analyzer.transcribe import bundled_model_dir

    cache = default_cache_dir()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ct2_dir", nargs="?", type=Path)
    parser.add_argument("--out", type=Path, default=cache / "models" / "whisper-base-openai.pt")
    args = parser.parse_args()
    print(convert(args.ct2_dir or bundled_model_dir(cache), args.out))


if __name__ == "__main__":
    main()
