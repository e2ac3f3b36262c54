"""The real models on the project's sample calls: transcript accuracy, speakers, roles, the output contract."""

from __future__ import annotations

import json

import pytest

from analyzer import CallResult
from analyzer.evaluate import cer
from analyzer.result import SCHEMA

from conftest import SAMPLE_IDS, role_of_time, truth

# Whisper base on the 8 kHz synthetic calls; measured 2026-11-28 (see README), with headroom.
MAX_SAMPLE_CER = 0.20


def test_there_are_samples_of_both_layouts():
    layouts = {truth(call_id)["layout"] for call_id in SAMPLE_IDS}
    assert len(SAMPLE_IDS) >= 4 and layouts == {"mono", "stereo"}


@pytest.mark.parametrize("call_id", SAMPLE_IDS)
def test_transcript_cer(sample_results, call_id):
    result, script = sample_results[call_id], truth(call_id)
    reference = "".join(t["text"] for t in script["turns"])
    hypothesis = "".join(t.text for t in result.turns)
    assert cer([(reference, hypothesis)]) <= MAX_SAMPLE_CER, result.transcript()


@pytest.mark.parametrize("call_id", SAMPLE_IDS)
def test_every_turn_has_the_right_role(sample_results, call_id):
    result, script = sample_results[call_id], truth(call_id)
    assert len(result.speakers) == 2
    assert {s.role for s in result.speakers} == {"collector", "borrower"}
    for turn in result.turns:
        assert turn.role == role_of_time(script, turn.start, turn.end), result.transcript()


@pytest.mark.parametrize("call_id", SAMPLE_IDS)
def test_layout_and_channels(sample_results, call_id):
    result, script = sample_results[call_id], truth(call_id)
    assert result.provenance.params["layout"] == script["layout"]
    if script["layout"] == "stereo":
        expected = {s["role"]: s["channel"] for s in script["speakers"]}
        assert {s.role: s.channel for s in result.speakers} == expected
    else:
        assert all(s.channel is None for s in result.speakers)


@pytest.mark.parametrize("call_id", SAMPLE_IDS)
def test_no_turn_spans_a_speaker_change(sample_results, call_id):
    """Each turn's words all lie within one scripted turn's role (words assigned by time, not by segment)."""
    result, script = sample_results[call_id], truth(call_id)
    for turn in result.turns:
        roles = {role_of_time(script, w.start, w.end) for w in turn.words} - {None}
        assert len(roles) <= 1, turn


def test_output_contract(sample_results):
    result = sample_results[SAMPLE_IDS[0]]
    data = json.loads(result.to_json())
    assert data["schema"] == SCHEMA
    assert set(data) >= {"schema", "call_id", "source", "speakers", "turns", "provenance", "errors"}
    assert set(data["source"]) >= {"path", "sha256", "duration_s", "sample_rate", "channels"}
    assert data["source"]["sample_rate"] == 8000
    for speaker in data["speakers"]:
        assert set(speaker) >= {"id", "role", "channel", "talk_time_s"}
    for turn in data["turns"]:
        assert set(turn) >= {"start", "end", "speaker", "role", "text", "words"}
        assert turn["start"] <= turn["end"]
        for word in turn["words"]:
            assert set(word) == {"start", "end", "text", "prob"}
            assert turn["start"] <= word["start"] <= word["end"] <= turn["end"]
    assert {"analyzer_version", "models", "params"} <= set(data["provenance"])
    assert data["provenance"]["models"]["asr"]["sha256"]
    assert CallResult.from_dict(data) == result


def test_text_is_simplified_and_punctuated(sample_results):
    text = "".join(t.text for r in sample_results.values() for t in r.turns)
    from opencc import OpenCC

    assert OpenCC("t2s").convert(text) == text
    assert all(t.text[-1] in "。？！?!" for r in sample_results.values() for t in r.turns)
