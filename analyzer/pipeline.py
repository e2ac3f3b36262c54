"""`analyze`: one recording in, one CallResult out. Every front end (CLI, batch, web) calls this."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import __version__, acoustics, classify, diarize, dynamics, flags, roles, speakers, timelines, transcribe, turns
from .audio import AudioError, load
from .config import Config
from .result import CallResult, Issue, Provenance


@dataclass
class Models:
    """The models, loaded once and reused for every call a process analyses."""

    whisper: transcribe.Whisper
    diarizer: diarize.Diarizer | diarize.PyannoteDiarizer
    classifier: classify.Classifier
    rulebook: flags.Rulebook
    description: dict                   # describe_models() of the configuration they were loaded from


class _Clock:
    def __init__(self):
        self.laps: dict[str, float] = {}
        self.last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps[stage] = round(now - self.last, 3)
        self.last = now


def describe_models(config: Config, rulebook: flags.Rulebook | None = None) -> dict:
    """The models `load_models` would load, named and hashed, without loading them: every result's provenance,
    and what a batch compares with the stored calls' to find what is left to do before it loads anything."""
    return {
        "asr": transcribe.identify(config),
        **diarize.describe(config),
        "text_classifier": classify.describe(_classifier_path(config)),
        "vad": {"name": "silero VAD v6 (faster-whisper assets)"},
        "rulebook": (rulebook or flags.load(config.rules)).describe(),
    }


def load_models(config: Config) -> Models:
    if config.cpu_threads:
        torch.set_num_threads(config.cpu_threads)
    rulebook = flags.load(config.rules)  # first: a faulty rulebook stops the run before any model loads
    return Models(transcribe.load(config), diarize.load_diarizer(config),
                  classify.Classifier(_classifier_path(config), config.resolved_device()), rulebook,
                  describe_models(config, rulebook))


def _classifier_path(config: Config) -> Path | None:
    return Path(config.classifier_model) if config.classifier_model else None


def analyze(path: str | Path, config: Config, models: Models, call_id: str | None = None,
            metadata: dict | None = None, data: bytes | None = None) -> CallResult:
    """Analyse one recording; `metadata` is what a manifest says of the call (collector_id, borrower_id,
    started_at, direction, calls_to_borrower_that_day, …); `data`, the file's bytes when they were read elsewhere.
    Raises AudioError for input that cannot be analysed."""
    clock = _Clock()
    audio = load(path, data)
    clock.lap("decode")
    segmentation = speakers.segment(audio, config, models.diarizer)
    if not segmentation.regions:
        raise AudioError("no speech found in the recording")
    clock.lap("speakers")

    issues = [Issue("decode", message) for message in audio.warnings]
    tagged = []
    for stream in segmentation.streams:
        words, stream_issues = transcribe.transcribe(models.whisper, stream.samples, stream.speech, config)
        issues.extend(stream_issues)
        for word in words:
            tagged.append((stream.speaker or turns.assign_speaker(word, segmentation.regions), word))
    clock.lap("transcribe")
    call_turns = turns.build(tagged, segmentation.regions, config.max_pause_s)
    if not call_turns:
        issues.append(Issue("transcribe", "speech was found but no words were recognised"))
    roles.assign(call_turns, segmentation.speakers)
    metrics = dynamics.measure(segmentation.regions, call_turns, segmentation.speakers, audio.source.duration_s)
    clock.lap("turns_roles_dynamics")
    classify.annotate(call_turns, models.classifier)
    clock.lap("classify")
    acoustics.measure(audio.samples, call_turns, segmentation.speakers)
    clock.lap("acoustics")
    timelines.fuse(call_turns, metrics)
    call_timelines = timelines.build(call_turns, audio.source.duration_s, config.timeline_step_s)
    clock.lap("timelines")
    call_flags = flags.apply(models.rulebook, call_turns, audio.source.duration_s, metadata)
    call_risk = flags.risk(call_flags)
    clock.lap("flags")

    return CallResult(
        call_id=call_id or Path(path).stem,
        source=audio.source,
        speakers=segmentation.speakers,
        turns=call_turns,
        provenance=Provenance(__version__, models.description, {**config.params(), "layout": segmentation.layout},
                              clock.laps),
        metrics=metrics,
        timelines=call_timelines,
        flags=call_flags,
        risk=call_risk,
        review_priority=flags.review_priority(call_flags, call_risk),
        metadata=dict(metadata or {}),
        errors=issues,
    )
