"""Mono diarization (segmentation-3.0 + CAM++) on real and constructed recordings, and conversation dynamics."""

from __future__ import annotations

import argparse
import os

import numpy as np
import pytest
from conftest import SAMPLES, SHARED, needs_shared, truth

from analyzer import Config
from analyzer.audio import SAMPLE_RATE, load
from analyzer.cli import _speaker_count
from analyzer.diarize import describe, load_diarizer
from analyzer.dynamics import measure
from analyzer.result import Speaker, Turn, Word
from analyzer.speakers import SpeechRegion, by_voice

DIARIZATION = SHARED / "data" / "diarization"


def der(reference_rttm, regions, duration) -> float:
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.database.util import load_rttm
    from pyannote.metrics.diarization import DiarizationErrorRate

    reference = next(iter(load_rttm(reference_rttm).values()))
    hypothesis = Annotation()
    for region in regions:
        hypothesis[Segment(region.start, region.end), len(hypothesis)] = region.speaker
    return DiarizationErrorRate(collar=0.0)(reference, hypothesis, uem=Timeline([Segment(0, duration)]))


@needs_shared
@pytest.mark.parametrize("name", ["zh2spk_turns", "zh2spk_overlap"])
def test_constructed_mandarin_calls(models, name):
    """Two AISHELL voices, with gaps and with 0.6 s of overlap: both speakers found, the overlap kept, and the 8 kHz
    telephone copy nearly as good (benchmarks/diarization.py prints the full table)."""
    scores = {}
    for suffix in ("", "_8k"):
        audio = load(DIARIZATION / "zh_constructed" / f"{name}{suffix}.wav")
        segmentation = by_voice(audio.mono(), Config(), models.diarizer)
        assert len(segmentation.speakers) == 2
        scores[suffix] = der(DIARIZATION / "zh_constructed" / f"{name}.rttm", segmentation.regions,
                             audio.source.duration_s)
        if name == "zh2spk_overlap":  # reference overlap: 3.56-4.16 s
            talking = [r.speaker for r in segmentation.regions if r.start < 3.9 < r.end]
            assert len(set(talking)) == 2
    assert scores[""] <= 0.08
    assert scores["_8k"] <= scores[""] + 0.05


@needs_shared
def test_speaker_models_are_exported_once_and_remade_when_damaged(tmp_path):
    """On a CPU the two speaker models run in onnxruntime from files exported into the cache on first use."""
    from analyzer.diarize import Diarizer

    diarizer = Diarizer("cpu", tmp_path, threads=1)
    files = sorted((tmp_path / "models").glob("*.onnx"))
    assert [f.name.split("-")[0] for f in files] == ["campplus", "segmentation"]
    assert describe(Config(device="cpu"))["speaker_embedding"]["runtime"] == "onnxruntime"
    samples = load(SAMPLES / "call_02_abusive.wav").mono()[: 20 * SAMPLE_RATE]
    turns = diarizer(samples, expected_speakers=2)
    stamps = [f.stat().st_mtime_ns for f in files]
    Diarizer("cpu", tmp_path, threads=1)
    assert [f.stat().st_mtime_ns for f in files] == stamps  # reused, not exported again
    files[0].write_bytes(b"not a model")
    again = Diarizer("cpu", tmp_path, threads=1)
    assert files[0].stat().st_size > 1_000_000
    assert again(samples, expected_speakers=2) == turns


def test_speaker_count_found_when_left_open(models):
    """pyannote's two-speaker English sample with the count left open: two speakers, DER at collar 0 under 12%."""
    audio = load(DIARIZATION / "pyannote_sample" / "sample.wav")
    segmentation = by_voice(audio.mono(), Config(num_speakers=None), models.diarizer)
    assert len(segmentation.speakers) == 2
    assert der(DIARIZATION / "pyannote_sample" / "sample.rttm", segmentation.regions, 30.0) <= 0.12


@pytest.mark.parametrize("call_id", ["call_01_compliant", "call_02_abusive", "call_03_distress",
                                     "call_04_angry_borrower"])
def test_every_scripted_turn_on_one_speaker(models, call_id):
    """Mixed to one channel, each scripted turn, short replies (嗯，好的 / 再见) included, lies on the diarized
    speaker of its party: one speaker per party, the same for all of that party's turns."""
    audio = load(SAMPLES / f"{call_id}.wav")
    regions = by_voice(audio.mono(), Config(), models.diarizer).regions
    speaker_of = {}
    for turn in truth(call_id)["turns"]:
        overlap = {}
        for region in regions:
            overlap[region.speaker] = overlap.get(region.speaker, 0.0) + max(
                0.0, min(turn["end"], region.end) - max(turn["start"], region.start))
        speaker = max(overlap, key=overlap.get)
        assert speaker_of.setdefault(turn["role"], speaker) == speaker, f"{turn['text']} on the other speaker"
    assert len(set(speaker_of.values())) == 2


def test_one_voice_stays_one_speaker(models):
    """A recording of one party only (one side of a call) is not split in two."""
    mono = load(SAMPLES / "call_03_distress.wav").mono()
    collector = [t for t in truth("call_03_distress")["turns"] if t["role"] == "collector"]
    one_voice = np.concatenate([mono[int(t["start"] * SAMPLE_RATE):int(t["end"] * SAMPLE_RATE)] for t in collector])
    segmentation = by_voice(one_voice, Config(), models.diarizer)
    assert len(segmentation.speakers) == 1


def test_scripted_interruptions_are_found(sample_results):
    """call_04's borrower twice talks over the collector: both found, by the borrower, of the collector."""
    result = sample_results["call_04_angry_borrower"]
    scripted = [t["start"] for t in truth("call_04_angry_borrower")["turns"] if t["overlaps_previous"]]
    found = result.metrics.interruptions
    assert len(found) == len(scripted)
    for interruption, start in zip(found, scripted):
        assert abs(interruption.at - start) <= 0.5
        assert (interruption.by_role, interruption.of_role) == ("borrower", "collector")
    borrower = next(p for p in result.metrics.parties.values() if p.role == "borrower")
    assert borrower.interruptions_made == 2 and result.metrics.overlap_s > 0.5


def test_dynamics_add_up(sample_results):
    for result in sample_results.values():
        metrics = result.metrics
        assert sum(p.talk_share for p in metrics.parties.values()) == pytest.approx(1.0, abs=0.01)
        assert len(metrics.quarters) == 4
        for speaker, party in metrics.parties.items():
            quarters = sum(q.parties[speaker].talk_time_s for q in metrics.quarters)
            assert quarters == pytest.approx(party.talk_time_s, abs=0.05)
            assert 2.0 < party.speech_rate_cps < 9.0  # Mandarin: about 4-6 characters a second
            assert party.turns == sum(t.speaker == speaker for t in result.turns)


def test_dynamics_of_a_known_exchange():
    """A: 0-5 s; B says 嗯 over A at 2 s (a backchannel); B cuts in at 4.5 s and A stops at 5 s (an interruption);
    4 s of silence; A answers at 13 s."""
    regions = [SpeechRegion(0.0, 5.0, "A"), SpeechRegion(2.0, 2.4, "B"), SpeechRegion(4.5, 9.0, "B"),
               SpeechRegion(13.0, 16.0, "A")]
    turns = [Turn(0.0, 5.0, "A", "collector", "一二三四五", [Word(0.0, 5.0, "一二三四五", 1.0)]),
             Turn(4.5, 9.0, "B", "borrower", "一二三", [Word(4.5, 9.0, "一二三", 1.0)]),
             Turn(13.0, 16.0, "A", "collector", "一二三", [Word(13.0, 16.0, "一二三", 1.0)])]
    speakers = [Speaker("A", role="collector"), Speaker("B", role="borrower")]
    metrics = measure(regions, turns, speakers, 16.0)
    assert [(i.by, i.of, i.yielded) for i in metrics.interruptions] == [("B", "A", True)]
    assert metrics.overlap_s == pytest.approx(0.9, abs=0.02)
    assert [(s.start, s.end) for s in metrics.silences] == [(9.0, 13.0)]
    assert metrics.parties["A"].response_latency_s == pytest.approx(4.0, abs=0.01)
    assert metrics.parties["B"].response_latency_s == pytest.approx(-0.5, abs=0.01)
    assert metrics.parties["A"].talk_time_s == pytest.approx(8.0, abs=0.02)
    assert metrics.parties["A"].speech_rate_cps == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("argv, expected", [
    ([], (2, 1)),
    (["--speakers", "3"], (3, 3)),
    (["--speakers", "auto"], (None, 1)),
    (["--max-speakers", "4"], (None, 1)),
    (["--speakers", "auto", "--min-speakers", "2"], (None, 2)),
])
def test_speaker_count_options(argv, expected):
    assert _speaker_count(_speaker_args(argv)) == expected


@pytest.mark.parametrize("argv", [["--speakers", "0"], ["--speakers", "two"], ["--speakers", "2", "--max-speakers", "3"],
                                  ["--min-speakers", "3", "--max-speakers", "2"]])
def test_bad_speaker_counts_are_refused(argv):
    with pytest.raises(SystemExit, match="speakers"):
        _speaker_count(_speaker_args(argv))


def _speaker_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speakers")
    parser.add_argument("--min-speakers", type=int)
    parser.add_argument("--max-speakers", type=int)
    return parser.parse_args(argv)


@needs_shared
def test_pyannote_backend_when_installed():
    """The optional stock pyannote.audio backend, where pyannote.audio loads with this torch and a pipeline is at
    hand (ANALYZER_PYANNOTE_PIPELINE: a local directory, or a Hugging Face id with HF_TOKEN set)."""
    try:
        import pyannote.audio  # noqa: F401
    except Exception as error:  # not installed, or torchaudio not matching torch
        pytest.skip(f"pyannote.audio does not load here: {error}")
    pipeline = os.environ.get("ANALYZER_PYANNOTE_PIPELINE")
    if not pipeline:
        pytest.skip("no pyannote pipeline given (ANALYZER_PYANNOTE_PIPELINE)")
    config = Config(diarizer="pyannote", pyannote_pipeline=pipeline, num_speakers=None)
    audio = load(DIARIZATION / "pyannote_sample" / "sample.wav")
    segmentation = by_voice(audio.mono(), config, load_diarizer(config))
    assert len(segmentation.speakers) == 2
    assert der(DIARIZATION / "pyannote_sample" / "sample.rttm", segmentation.regions, 30.0) <= 0.12
