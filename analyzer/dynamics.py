"""Conversation dynamics, per party and per quarter of the call: who talks how much and how fast, silences, talk
over, interruptions and how long each party takes to answer (what AWS Call Analytics reports as talk time,
non-talk time, talk speed and interruptions)."""

from __future__ import annotations

import numpy as np

from .result import Dynamics, Interruption, PartyDynamics, Period, Silence, Speaker, Turn
from .speakers import SpeechRegion

LONG_SILENCE_S = 2.0        # non-talk time: nobody speaks for longer than this
MIN_TALK_OVER_S = 0.25      # less overlap than this is turn-taking, not talking over
BACKCHANNEL_S = 1.0         # talk over shorter than this while the other goes on is 嗯/对, not an interruption
YIELD_S = 2.0               # an interrupted party that stops within this long gave up the floor
RESOLUTION_S = 0.01
PUNCTUATION = set("，。？！、；：,.?!;:…\"'“”‘’（）() ")


def measure(regions: list[SpeechRegion], turns: list[Turn], speakers: list[Speaker], duration: float) -> Dynamics:
    roles = {s.id: s.role for s in speakers}
    timeline = _timeline(regions, [s.id for s in speakers], duration)
    interruptions = _interruptions(regions, roles)
    quarters = [(duration * q / 4, duration * (q + 1) / 4) for q in range(4)]
    return Dynamics(
        duration_s=round(duration, 2),
        parties=_parties(timeline, regions, turns, roles, interruptions, 0.0, duration),
        overlap_s=_overlap(timeline, 0.0, duration),
        silence_s=_total(_silences(timeline, 0.0, duration, 0.0)),
        silences=_silences(timeline, 0.0, duration, LONG_SILENCE_S),
        interruptions=interruptions,
        quarters=[
            Period(
                start=round(start, 2), end=round(end, 2),
                parties=_parties(timeline, regions, turns, roles, interruptions, start, end),
                overlap_s=_overlap(timeline, start, end),
                silence_s=_total(_silences(timeline, start, end, LONG_SILENCE_S)),
                interruptions=sum(start <= i.at < end for i in interruptions),
            )
            for start, end in quarters
        ],
    )


def _timeline(regions: list[SpeechRegion], ids: list[str], duration: float) -> dict[str, np.ndarray]:
    """Each speaker's speech as a boolean array at RESOLUTION_S."""
    length = int(np.ceil(duration / RESOLUTION_S)) + 1
    timeline = {speaker: np.zeros(length, dtype=bool) for speaker in ids}
    for region in regions:
        timeline[region.speaker][int(region.start / RESOLUTION_S):int(np.ceil(region.end / RESOLUTION_S))] = True
    return timeline


def _span(start: float, end: float) -> slice:
    return slice(int(round(start / RESOLUTION_S)), int(round(end / RESOLUTION_S)))


def _overlap(timeline: dict[str, np.ndarray], start: float, end: float) -> float:
    talking = sum(t[_span(start, end)].astype(int) for t in timeline.values())
    return round(float(np.sum(talking >= 2)) * RESOLUTION_S, 2) if timeline else 0.0


def _silences(timeline: dict[str, np.ndarray], start: float, end: float, longer_than: float) -> list[Silence]:
    span = _span(start, end)
    anyone = np.any(np.stack([t[span] for t in timeline.values()]), axis=0) if timeline else np.zeros(0, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[1], anyone.astype(int), [1]])))
    silences = []
    for first, last in zip(edges[::2], edges[1::2]):
        if (last - first) * RESOLUTION_S > longer_than:
            silences.append(Silence(round(start + first * RESOLUTION_S, 2), round(start + last * RESOLUTION_S, 2)))
    return silences


def _total(silences: list[Silence]) -> float:
    return round(float(sum(s.end - s.start for s in silences)), 2)


def _interruptions(regions: list[SpeechRegion], roles: dict[str, str]) -> list[Interruption]:
    """One party starts talking while the other is speaking, and keeps on for more than a backchannel."""
    found = []
    for region in regions:
        for other in regions:
            if other.speaker == region.speaker or not other.start < region.start < other.end:
                continue
            overlap = min(region.end, other.end) - region.start
            if overlap < MIN_TALK_OVER_S:
                continue
            yielded = other.end - region.start <= YIELD_S and other.end < region.end
            if region.end - region.start < BACKCHANNEL_S and not yielded:
                continue
            found.append(Interruption(at=round(region.start, 2), by=region.speaker, by_role=roles[region.speaker],
                                      of=other.speaker, of_role=roles[other.speaker], overlap_s=round(overlap, 2),
                                      yielded=yielded))
            break
    return found


def _latencies(regions: list[SpeechRegion], speaker: str, start: float, end: float) -> list[float]:
    """How long `speaker` took to answer: from the end of the other party's speech to the start of theirs (negative
    where they started before the other stopped), for each of their turns that answers the other. A backchannel
    inside the other's speech answers nothing, and speech that goes on from their own is no answer."""
    latencies = []
    for region in regions:
        if region.speaker != speaker or not start <= region.start < end:
            continue
        before = [r for r in regions if r.start < region.start]
        others = [r for r in before if r.speaker != speaker]
        if not others:
            continue
        answered = max(others, key=lambda r: r.start)
        own = [r for r in before if r.speaker == speaker and r.start >= answered.start and r.end > answered.end]
        if region.end > answered.end and not own:
            latencies.append(region.start - answered.end)
    return latencies


def _parties(timeline, regions, turns, roles, interruptions, start: float, end: float) -> dict[str, PartyDynamics]:
    span = _span(start, end)
    talk = {speaker: float(t[span].sum()) * RESOLUTION_S for speaker, t in timeline.items()}
    total = sum(talk.values())
    parties = {}
    for speaker, seconds in talk.items():
        characters = sum(
            sum(ch not in PUNCTUATION for ch in w.text)
            for turn in turns if turn.speaker == speaker for w in turn.words if start <= (w.start + w.end) / 2 < end
        )
        latencies = _latencies(regions, speaker, start, end)
        parties[speaker] = PartyDynamics(
            role=roles[speaker],
            talk_time_s=round(seconds, 2),
            talk_share=round(seconds / total, 3) if total else 0.0,
            speech_rate_cps=round(characters / seconds, 2) if seconds else 0.0,
            turns=sum(start <= t.start < end for t in turns if t.speaker == speaker),
            interruptions_made=sum(i.by == speaker and start <= i.at < end for i in interruptions),
            interrupted=sum(i.of == speaker and start <= i.at < end for i in interruptions),
            response_latency_s=round(float(np.median(latencies)), 2) if latencies else None,
            responses=len(latencies),
        )
    return parties
