"""Transcription accuracy on real Mandarin speech from ../shared (skipped where it is absent)."""

from __future__ import annotations

import json

import pytest

from analyzer import transcribe, vad
from analyzer.audio import load
from analyzer.evaluate import cer

from conftest import ASR_DRIFT, SHARED, needs_shared

# Measured 13.9% at 16 kHz and 26.2% at 8 kHz (benchmarks/asr_cer.py); these bars catch regressions.
MAX_CER = {"wav": 0.16, "wav_8k": 0.29}


@needs_shared
@pytest.mark.parametrize("key", ["wav", pytest.param("wav_8k", marks=ASR_DRIFT)])
def test_cer_on_real_mandarin(models, config, key):
    root = SHARED / "data/asr_zh"
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines() if line.strip()]
    pairs = []
    for row in rows:
        samples = load(root / row[key]).mono()
        words, _ = transcribe.transcribe(models.whisper, samples, vad.detect(samples).decode, config)
        pairs.append((row["text"], "".join(w.text for w in words)))
    assert cer(pairs) <= MAX_CER[key], pairs
