"""Transcription accuracy on real Mandarin speech from ../shared (skipped where it is absent)."""

from __future__ import annotations

import json

import pytest

from analyzer import transcribe, vad
from analyzer.audio import load
from analyzer.evaluate import cer

from conftest import INT8_GEMM, SHARED, needs_shared

# Measured (benchmarks/asr_cer.py) with MKL's int8 13.9% at 16 kHz and 26.2-26.7% at 8 kHz, with oneDNN's 15.5% and
# 29.4% (conftest.INT8_GEMM); these bars catch regressions.
MAX_CER = {"wav": 0.16, "wav_8k": 0.31 if INT8_GEMM == "oneDNN" else 0.29}


@needs_shared
@pytest.mark.parametrize("key", ["wav", "wav_8k"])
def test_cer_on_real_mandarin(models, config, key):
    root = SHARED / "data/asr_zh"
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line.strip()]
    pairs = []
    for row in rows:
        samples = load(root / row[key]).mono()
        words, _ = transcribe.transcribe(models.whisper, samples, vad.detect(samples).decode, config)
        pairs.append((row["text"], "".join(w.text for w in words)))
    assert cer(pairs) <= MAX_CER[key], pairs
