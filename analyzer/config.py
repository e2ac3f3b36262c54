"""One configuration object for a run: device, model paths, decoding and segmentation settings."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Collection-domain vocabulary. Whisper base hears 逾期 as 一七 and 还款 as 海款 on telephone audio unless
# these words are in its context.
DOMAIN_TERMS = (
    "逾期", "还款", "欠款", "借款", "贷款", "罚息", "征信", "分期", "停息挂账", "催收", "利息", "起诉",
    "账单", "本金", "最低还款", "宽限", "法务", "客服", "信用卡", "消费金融",
)

# A Simplified-Chinese, punctuated prompt makes Whisper answer in Simplified script with punctuation.
INITIAL_PROMPT = "以下是普通话的电话录音，内容关于借款逾期、还款、欠款、罚息和征信。"


def default_cache_dir() -> Path:
    if os.environ.get("ANALYZER_CACHE"):
        return Path(os.environ["ANALYZER_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "analyzer"


@dataclass
class Config:
    device: str = "auto"                  # auto | cpu | cuda
    asr_backend: str = "faster-whisper"   # or openai-whisper (optional extra)
    # faster-whisper: a CTranslate2 or Hugging Face Whisper directory, or a size name; openai-whisper: a .pt
    # checkpoint or a size name. None = the bundled multilingual base (faster-whisper)
    whisper_model: str | None = None
    allow_download: bool = False          # size names not in the local caches may be downloaded
    compute_type: str = "auto"            # auto = int8 on CPU, float16 on CUDA (either backend)
    cpu_threads: int = 0                  # 0 = all cores
    beam_size: int = 5
    # beam search looks further before it stops (asr_zh CER: 16 kHz 15.0 -> 13.9%, 8 kHz 27.3 -> 26.2%)
    patience: float = 2.0
    language: str = "zh"
    # Off by default: Whisper base loops and repeats itself with a prompt or hotwords (CER on asr_zh 15.0% plain,
    # 21.9% with the prompt, 35.3% with prompt and hotwords, at up to 6x the time). `--domain-prompt` turns them
    # on for a larger model. With base, the domain terms are fixed after decoding (transcribe.DOMAIN_FIXES).
    initial_prompt: str | None = None
    hotwords: tuple[str, ...] = ()
    # Mono recordings: a phone call has two speakers (one, when both are unmistakably one voice); None = count
    # them, within [min_speakers, max_speakers].
    num_speakers: int | None = 2
    min_speakers: int = 1
    max_speakers: int | None = None
    diarizer: str = "builtin"             # builtin | pyannote (optional extra: a stock pyannote.audio pipeline)
    pyannote_pipeline: str = "pyannote/speaker-diarization-community-1"  # a local directory or a Hugging Face id
    classifier_model: str | None = None   # a text classifier directory; None = the one installed with the package
    max_pause_s: float = 1.5              # a longer pause inside one speaker's speech starts a new turn
    timeline_step_s: float = 1.0          # the pressure / stress / emotion timelines' sampling step
    rules: str | None = None              # a rulebook YAML file; None = the one installed with the package
    cache_dir: Path = field(default_factory=default_cache_dir)

    def resolved_device(self) -> str:
        if self.device != "auto":
            return self.device
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"

    def resolved_compute_type(self) -> str:
        if self.compute_type != "auto":
            return self.compute_type
        return "float16" if self.resolved_device() == "cuda" else "int8"

    def params(self) -> dict:
        """What a result records of the settings that shaped it."""
        values = asdict(self)
        values.pop("cache_dir")
        values["hotwords"] = list(self.hotwords)
        values["device"] = self.resolved_device()
        values["compute_type"] = self.resolved_compute_type()
        return values
