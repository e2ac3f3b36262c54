"""Decoding every common format, keeping channels, and a clear error for every kind of bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from analyzer import AudioError, analyze
from analyzer.audio import SAMPLE_RATE, load
from analyzer.speakers import distinct_channels

from conftest import SAMPLES, encode, role_of_time, truth

STEREO = "call_04_angry_borrower"


@pytest.fixture(scope="module")
def stereo_call():
    clip = load(SAMPLES / f"{STEREO}.wav")
    return clip.samples


@pytest.mark.parametrize(
    "suffix,codec,rate,decoded_rate",
    [("mp3", "libmp3lame", 44100, 44100), ("m4a", "aac", 48000, 48000), ("aac", "aac", 16000, 16000),
     ("ogg", "libopus", 48000, 48000), ("opus", "libopus", 24000, 48000),  # Opus always decodes at 48 kHz
     ("flac", "flac", 22050, 22050), ("wav", "pcm_s16le", 11025, 11025)],
)
def test_decodes_format_at_any_rate_keeping_channels(tmp_path, stereo_call, suffix, codec, rate, decoded_rate):
    path = encode(stereo_call[:, : 5 * SAMPLE_RATE], SAMPLE_RATE, tmp_path / f"clip.{suffix}", codec, out_rate=rate)
    clip = load(path)
    assert clip.source.sample_rate == decoded_rate
    assert clip.source.channels == 2 and clip.samples.shape[0] == 2
    assert abs(clip.duration_s - 5.0) < 0.15
    assert distinct_channels(clip.samples) == [0, 1]


def test_decodes_amr_narrowband(tmp_path, stereo_call):
    mono = stereo_call[:, : 5 * SAMPLE_RATE].mean(axis=0, keepdims=True)
    clip = load(encode(mono, SAMPLE_RATE, tmp_path / "clip.amr", "libopencore_amrnb", out_rate=8000))
    assert clip.source.sample_rate == 8000 and clip.source.channels == 1
    assert abs(clip.duration_s - 5.0) < 0.15


def test_compressed_stereo_call_end_to_end(tmp_path, stereo_call, models, config):
    """A 48 kHz Opus stereo file analyses like the original: channel = speaker, roles right."""
    path = encode(stereo_call, SAMPLE_RATE, tmp_path / f"{STEREO}.opus", "libopus", out_rate=48000)
    result = analyze(path, config, models)
    script = truth(STEREO)
    assert result.provenance.params["layout"] == "stereo"
    assert all(t.role == role_of_time(script, t.start, t.end) for t in result.turns)


def test_same_signal_on_both_channels_is_mono(tmp_path, stereo_call):
    mono = stereo_call[:, : 10 * SAMPLE_RATE].mean(axis=0)
    clip = load(encode(np.stack([mono, 0.5 * mono]), SAMPLE_RATE, tmp_path / "dual.wav", "pcm_s16le"))
    assert clip.samples.shape[0] == 2
    assert distinct_channels(clip.samples) is None


def test_one_silent_channel_is_mono(tmp_path, stereo_call):
    mono = stereo_call[:, : 10 * SAMPLE_RATE].mean(axis=0)
    clip = load(encode(np.stack([mono, np.zeros_like(mono)]), SAMPLE_RATE, tmp_path / "left.wav", "pcm_s16le"))
    assert distinct_channels(clip.samples) is None


def _silent_wav(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x00\x00" * int(8000 * seconds))
    return path


def _bad_inputs(tmp: Path, good: Path) -> dict[str, tuple[Path, str]]:
    """name -> (path, a phrase the error must contain)"""
    empty = tmp / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\xff\xff\xff\xffWAVEfmt " + bytes(range(256)) * 8)
    text = tmp / "notes.mp3"
    text.write_text("这不是音频文件，只是一段文字。\n" * 50, encoding="utf-8")
    truncated = tmp / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:30])
    folder = tmp / "folder.wav"
    folder.mkdir()
    return {
        "missing": (tmp / "no-such-call.wav", "not found"),
        "directory": (folder, "directory"),
        "empty": (empty, "empty file"),
        "zero_length": (_silent_wav(tmp / "zero.wav", 0), "zero-length"),
        "corrupt_header": (corrupt, "not a readable audio file"),
        "truncated_header": (truncated, "not a readable audio file"),
        "not_audio": (text, "not a readable audio file"),
        "silence": (_silent_wav(tmp / "silence.wav", 5), "silent"),
    }


@pytest.mark.parametrize(
    "name", ["missing", "directory", "empty", "zero_length", "corrupt_header", "truncated_header", "not_audio",
             "silence"]
)
def test_bad_input_gets_a_clear_error(tmp_path, name):
    path, phrase = _bad_inputs(tmp_path, SAMPLES / f"{STEREO}.wav")[name]
    with pytest.raises(AudioError, match=phrase):
        load(path)


def test_noise_without_speech_is_an_error(tmp_path, models, config):
    noise = np.random.default_rng(0).normal(0, 0.01, size=(1, 5 * SAMPLE_RATE))
    path = encode(noise, SAMPLE_RATE, tmp_path / "hiss.wav", "pcm_s16le")
    with pytest.raises(AudioError, match="no speech"):
        analyze(path, config, models)


def test_batch_goes_on_past_bad_files_and_counts_them(tmp_path):
    """The CLI: one line per bad file, good files analysed, exit status = number of failures, nothing lost."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    bad = _bad_inputs(inputs, SAMPLES / f"{STEREO}.wav")
    for name in ("missing", "directory"):  # not files inside the folder: named on the command line below
        bad.pop(name)
    good = inputs / "good.wav"
    good.write_bytes((SAMPLES / f"{STEREO}.wav").read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    keep = out / "earlier.json"
    keep.write_text('{"kept": true}')

    command = [sys.executable, "-m", "analyzer.cli", "analyze", str(inputs), str(tmp_path / "missing.wav"),
               "--out", str(out), "-q"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert run.returncode == len(bad) + 1, run.stderr
    failed_lines = [line for line in run.stderr.splitlines() if line.startswith("FAILED ")]
    assert len(failed_lines) == len(bad) + 1
    for name, (path, phrase) in bad.items():
        assert any(str(path) in line and phrase in line for line in failed_lines), (name, run.stderr)
    assert (out / "good.json").is_file() and (out / "good.txt").is_file()
    assert json.loads(keep.read_text()) == {"kept": True}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["analyzed"] == 1 and summary["failed"] == len(bad) + 1
    log = (out / "analyzer.log").read_text()
    assert all(str(path) in log for path, _ in bad.values())

    # a second run skips the finished call and keeps its result
    before = (out / "good.json").read_text()
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == len(bad) + 1
    assert json.loads((out / "summary.json").read_text())["skipped_up_to_date"] == 1
    assert (out / "good.json").read_text() == before
