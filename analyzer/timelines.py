"""How hard the collector pushes and how the borrower holds up, turn by turn and second by second.

Each collector turn gets a `pressure` and each borrower turn a `stress`, 0…1: a weighted sum of components that
are each 0…1, clipped to 0…1. The weights are below and nowhere else; each turn keeps its components and the
call keeps the weights (`timelines.weights`), so pressure and stress can be recomputed or reweighted from the
JSON alone.

pressure = 0.40 coercion        threat_legal + threat_third_party + insult probability (collector head)
         + 0.15 urgency         urgency probability
         + 0.15 offensive       offensive-language probability
         + 0.05 hostility       angry + disgusted emotion probability
         + 0.10 raised_voice    2 × (arousal − 0.5), floored at 0: louder/higher/faster than the collector's usual
         + 0.05 interrupting    1 when the turn starts by talking over the borrower
         + 0.10 repeated        coercive or urgent collector turns in the previous REPEAT_WINDOW_S, / 3, at most 1
         − 0.15 empathy         empathy probability
stress   = 0.45 state           self_harm + distress + 0.6 hardship + 0.7 anger probability (borrower head), at most 1
         + 0.15 negative_emotion sad + anxious + angry emotion probability
         + 0.10 negative_sentiment −sentiment, floored at 0
         + 0.15 raised_voice    as above, against the borrower's usual voice
         + 0.15 latency         a long wait before answering ((latency − 1 s) / 3 s) or answering over the collector

Timelines: on a grid of `step_s`, a role's series is its turn's score while the turn lasts; after it, that score
fades with a half-life of FADE_HALF_LIFE_S until the role's next turn (pressure felt does not vanish when the
collector pauses); then a Gaussian smoothing of SMOOTHING_S. Emotion per role and label is carried the same way,
fading towards neutral.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from .dynamics import MIN_TALK_OVER_S
from .result import Dynamics, Peak, TimelineQuarter, Timelines, Turn

PRESSURE_WEIGHTS = {"coercion": 0.40, "urgency": 0.15, "offensive": 0.15, "hostility": 0.05, "raised_voice": 0.10,
                    "interrupting": 0.05, "repeated": 0.10, "empathy": -0.15}
STRESS_WEIGHTS = {"state": 0.45, "negative_emotion": 0.15, "negative_sentiment": 0.10, "raised_voice": 0.15,
                  "latency": 0.15}
STATE_WEIGHTS = {"self_harm": 1.0, "distress": 1.0, "hardship": 0.6, "anger": 0.7}
REPEAT_WINDOW_S = 120.0
REPEAT_FULL = 3               # this many earlier coercive or urgent turns in the window count fully
DEMAND_THRESHOLD = 0.5        # a turn is coercive or urgent when their probabilities sum to this
INTERRUPT_TOLERANCE_S = 0.5   # an interruption this close to a turn's start is the turn's
HESITATION_S = (1.0, 3.0)     # latency component: (latency − 1 s) / 3 s
FADE_HALF_LIFE_S = 8.0
SMOOTHING_S = 1.5             # Gaussian sigma
PEAK_PROMINENCE = 0.1
MAX_PEAKS = 3                 # per series
SERIES_ROLES = {"collector_pressure": "collector", "borrower_stress": "borrower"}


def fuse(turns: list[Turn], metrics: Dynamics) -> None:
    """Give each collector turn its `pressure` and each borrower turn its `stress`, with their components."""
    interruptions = [(i.at, i.by) for i in metrics.interruptions]
    for index, turn in enumerate(turns):
        if turn.role == "collector":
            turn.components = _pressure_components(turns, index, interruptions)
            turn.pressure = _weighted(turn.components, PRESSURE_WEIGHTS)
        elif turn.role == "borrower":
            turn.components = _stress_components(turns, index)
            turn.stress = _weighted(turn.components, STRESS_WEIGHTS)


def build(turns: list[Turn], duration_s: float, step_s: float = 1.0) -> Timelines:
    """Sample the turns' pressure, stress and emotion every `step_s` seconds; quarters; peaks."""
    grid = np.arange(0.0, max(duration_s, step_s), step_s)
    series, raw, sources = {}, {}, {}
    for name, role in SERIES_ROLES.items():
        score = "pressure" if role == "collector" else "stress"
        raw[name], sources[name] = _carry(grid, turns, role, lambda turn: getattr(turn, score) or 0.0, rest=0.0)
        series[name] = _smooth(raw[name], step_s)
    emotion = {}
    for role in ("collector", "borrower"):
        labels = sorted({label for turn in turns if turn.role == role and turn.emotion
                         for label in turn.emotion.scores})
        emotion[role] = {label: _smooth(_carry(grid, turns, role, lambda turn: _emotion(turn, label),
                                               rest=float(label == "neutral"))[0], step_s)
                         for label in labels}
    return Timelines(
        step_s=step_s,
        t=[round(float(t), 3) for t in grid],
        collector_pressure=_rounded(series["collector_pressure"]),
        borrower_stress=_rounded(series["borrower_stress"]),
        emotion={role: {label: _rounded(values) for label, values in labels.items()}
                 for role, labels in emotion.items()},
        quarters=_quarters(grid, series, duration_s),
        peaks=[peak for name in SERIES_ROLES
               for peak in _peaks(name, grid, series[name], raw[name], sources[name], turns, step_s)],
        weights={"collector_pressure": PRESSURE_WEIGHTS, "borrower_stress": STRESS_WEIGHTS,
                 "borrower_state": STATE_WEIGHTS},
    )


def _pressure_components(turns: list[Turn], index: int, interruptions: list[tuple[float, str]]) -> dict:
    turn = turns[index]
    acts, emotion = turn.acts, turn.emotion.scores if turn.emotion else {}
    earlier = [other for other in turns[:index] if other.role == "collector"
               and other.start >= turn.start - REPEAT_WINDOW_S and _demand(other) >= DEMAND_THRESHOLD]
    return _rounded_dict({
        "coercion": acts.get("threat_legal", 0) + acts.get("threat_third_party", 0) + acts.get("insult", 0),
        "urgency": acts.get("urgency", 0.0),
        "offensive": turn.offensive or 0.0,
        "hostility": emotion.get("angry", 0) + emotion.get("disgusted", 0),
        "raised_voice": _raised(turn.arousal),
        "interrupting": float(any(by == turn.speaker and abs(at - turn.start) <= INTERRUPT_TOLERANCE_S
                                  for at, by in interruptions)),
        "repeated": min(1.0, len(earlier) / REPEAT_FULL),
        "empathy": acts.get("empathy", 0.0),
    })


def _stress_components(turns: list[Turn], index: int) -> dict:
    turn = turns[index]
    acts, emotion = turn.acts, turn.emotion.scores if turn.emotion else {}
    return _rounded_dict({
        "state": sum(weight * acts.get(state, 0.0) for state, weight in STATE_WEIGHTS.items()),
        "negative_emotion": emotion.get("sad", 0) + emotion.get("anxious", 0) + emotion.get("angry", 0),
        "negative_sentiment": max(0.0, -(turn.sentiment or 0.0)),
        "raised_voice": _raised(turn.arousal),
        "latency": _latency_component(turns, index),
    })


def _demand(turn: Turn) -> float:
    return sum(turn.acts.get(act, 0.0) for act in ("threat_legal", "threat_third_party", "insult", "urgency"))


def _raised(arousal: float | None) -> float:
    return max(0.0, 2.0 * ((arousal if arousal is not None else 0.5) - 0.5))


def _latency_component(turns: list[Turn], index: int) -> float:
    """How long the borrower waited to answer the other party's last turn, or 1 for answering over it."""
    turn = turns[index]
    if index == 0 or turns[index - 1].speaker == turn.speaker:
        return 0.0  # not an answer: the call's first turn, or the borrower going on after a pause
    latency = turn.start - turns[index - 1].end
    if latency <= -MIN_TALK_OVER_S:  # starting this far into their turn is answering over them
        return 1.0
    wait, span = HESITATION_S
    return (latency - wait) / span


def _weighted(components: dict[str, float], weights: dict[str, float]) -> float:
    return round(float(np.clip(sum(weights[name] * value for name, value in components.items()), 0.0, 1.0)), 3)


def _rounded_dict(values: dict[str, float]) -> dict[str, float]:
    return {name: round(float(np.clip(value, 0.0, 1.0)), 3) for name, value in values.items()}


def _emotion(turn: Turn, label: str) -> float:
    return turn.emotion.scores.get(label, 0.0) if turn.emotion else float(label == "neutral")


def _carry(grid: np.ndarray, turns: list[Turn], role: str, value_of, rest: float) -> tuple[np.ndarray, np.ndarray]:
    """A role's score at each grid time (its turn's while it lasts, then fading to `rest` until the role's next
    turn) and, per grid time, the index of the turn it comes from (-1 before the role's first turn)."""
    values = np.full(len(grid), rest)
    sources = np.full(len(grid), -1)
    mine = [(index, turn) for index, turn in enumerate(turns) if turn.role == role]
    for position, (index, turn) in enumerate(mine):
        following = mine[position + 1][1].start if position + 1 < len(mine) else np.inf
        score = value_of(turn)
        # where two turns of one role overlap (two collectors at once), the stronger holds
        speaking = (grid >= turn.start) & (grid < turn.end) & ((sources < 0) | (score >= values))
        after = (grid >= turn.end) & (grid < following)
        values[speaking], sources[speaking] = score, index
        values[after] = rest + (score - rest) * 0.5 ** ((grid[after] - turn.end) / FADE_HALF_LIFE_S)
        sources[after] = index
    return values, sources


def _smooth(values: np.ndarray, step_s: float) -> np.ndarray:
    return gaussian_filter1d(values, sigma=SMOOTHING_S / step_s, mode="nearest") if len(values) > 1 else values


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 3) for v in values]


def _quarters(grid: np.ndarray, series: dict[str, np.ndarray], duration_s: float) -> list[TimelineQuarter]:
    quarters = []
    for quarter in range(4):
        start, end = duration_s * quarter / 4, duration_s * (quarter + 1) / 4
        inside = (grid >= start) & (grid < end) if quarter < 3 else grid >= start
        pressure, stress = series["collector_pressure"][inside], series["borrower_stress"][inside]
        quarters.append(TimelineQuarter(
            start=round(start, 2), end=round(end, 2),
            collector_pressure_mean=round(float(pressure.mean()), 3) if len(pressure) else 0.0,
            collector_pressure_max=round(float(pressure.max()), 3) if len(pressure) else 0.0,
            borrower_stress_mean=round(float(stress.mean()), 3) if len(stress) else 0.0,
            borrower_stress_max=round(float(stress.max()), 3) if len(stress) else 0.0,
        ))
    return quarters


def _peaks(name: str, grid: np.ndarray, values: np.ndarray, raw: np.ndarray, sources: np.ndarray,
           turns: list[Turn], step_s: float) -> list[Peak]:
    """The series' highest point and its other prominent local maxima, each with the turn that caused it: the
    source of the highest unsmoothed point within the smoothing's reach."""
    if not len(values) or values.max() <= 0:
        return []
    found, _ = find_peaks(np.concatenate([[-np.inf], values, [-np.inf]]), prominence=PEAK_PROMINENCE)
    reach = int(np.ceil(2 * SMOOTHING_S / step_s))
    peaks = []
    for position in sorted(set((found - 1).tolist()) | {int(values.argmax())}, key=lambda p: -values[p]):
        near = np.arange(max(0, position - reach), min(len(raw), position + reach + 1))
        near = near[sources[near] >= 0]
        if not len(near):
            continue
        source = int(sources[near[raw[near].argmax()]])
        turn = turns[source]
        peaks.append(Peak(name, round(float(grid[position]), 3), round(float(values[position]), 3), source,
                          turn.speaker, turn.text))
    return peaks[:MAX_PEAKS]
