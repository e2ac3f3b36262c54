"""Scoring against references: character error rate for Mandarin, and test recordings put together from clips
(used by the benchmarks and tests)."""

from __future__ import annotations

import re
import warnings

import numpy as np
from opencc import OpenCC

from . import vad
from .audio import SAMPLE_RATE

_T2S = OpenCC("t2s")


def normalize(text: str) -> str:
    """Simplified script, no punctuation or spaces, numbers as Arabic digits (两千四百 and 2400 compare equal)."""
    import cn2an

    text = re.sub(r"[^\w]", "", _T2S.convert(text))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cn2an warns about digit runs such as 七六十 and leaves them as they are
        try:
            return cn2an.transform(text, "cn2an")
        except (ValueError, KeyError):  # it gives up on some mixed strings: compare them as they are
            return text


def char_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(edit distance in characters, reference length) after normalisation."""
    import jiwer

    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return len(hyp), 0
    if not hyp:
        return len(ref), len(ref)
    out = jiwer.process_characters(ref, hyp)
    return out.substitutions + out.deletions + out.insertions, len(ref)


def cer(pairs: list[tuple[str, str]]) -> float:
    """Corpus CER over (reference, hypothesis) pairs: all edits over all reference characters."""
    errors = length = 0
    for reference, hypothesis in pairs:
        e, n = char_errors(reference, hypothesis)
        errors, length = errors + e, length + n
    return errors / max(length, 1)


def join_speech(recordings: list[tuple[str, np.ndarray]], gap_s: float) -> tuple[str, np.ndarray]:
    """(text, samples) pairs as one recording: each one's speech, from the first region Whisper would decode to the
    last, end to end with gap_s of silence between them; and the texts joined."""
    gap = np.zeros(int(gap_s * SAMPLE_RATE), dtype=np.float32)
    pieces = []
    for _, samples in recordings:
        regions = vad.detect(samples).decode
        if regions:
            start, end = int(regions[0][0] * SAMPLE_RATE), int(regions[-1][1] * SAMPLE_RATE)
            pieces += [samples[start:end], gap]
    return "".join(text for text, _ in recordings), np.concatenate(pieces[:-1])
