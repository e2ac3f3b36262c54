"""The data model of an analysed call, passed from stage to stage and serialised as the per-call JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

SCHEMA = "analyzer.call/3"
# 2: conversation dynamics under `metrics`; per-turn emotion, sentiment, acts
# 3: per-turn acoustics, arousal, pressure / stress with their components; `timelines`; `flags`, `risk`,
#    `review_priority`; the call's `metadata`
ROLES = ("collector", "borrower", "unknown")


@dataclass
class Word:
    start: float
    end: float
    text: str
    prob: float


@dataclass
class Emotion:
    label: str
    scores: dict[str, float]


@dataclass
class Acoustic:
    raw: dict[str, float | None]    # acoustics.FEATURES; None where the turn has too little voice to measure
    z: dict[str, float | None]      # robust z-scores against the same speaker's turns in this call


@dataclass
class Turn:
    start: float
    end: float
    speaker: str
    role: str
    text: str
    words: list[Word] = field(default_factory=list)
    emotion: Emotion | None = None
    sentiment: float | None = None          # -1 negative … 1 positive
    offensive: float | None = None          # probability of offensive language
    acts: dict[str, float] = field(default_factory=dict)  # the collector's tactics or the borrower's states
    acoustic: Acoustic | None = None
    arousal: float | None = None            # 0…1; 0.5 = the speaker's usual voice in this call
    pressure: float | None = None           # collector turns, 0…1 (timelines.PRESSURE_WEIGHTS)
    stress: float | None = None             # borrower turns, 0…1 (timelines.STRESS_WEIGHTS)
    components: dict[str, float] = field(default_factory=dict)  # the inputs of pressure or stress, each 0…1

    def top_act(self) -> str | None:
        """The turn's most likely tactic or state when it is one (not neutral) and likely (≥ 0.5)."""
        if not self.acts:
            return None
        act = max(self.acts, key=self.acts.get)
        return act if act not in ("neutral", "neutral_info") and self.acts[act] >= 0.5 else None

    @classmethod
    def from_dict(cls, data: dict) -> Turn:
        emotion = Emotion(**data["emotion"]) if data.get("emotion") else None
        acoustic = Acoustic(**data["acoustic"]) if data.get("acoustic") else None
        return cls(**{**data, "words": [Word(**w) for w in data["words"]], "emotion": emotion, "acoustic": acoustic})


@dataclass
class Speaker:
    id: str
    role: str = "unknown"
    channel: int | None = None
    talk_time_s: float = 0.0
    role_confidence: float = 0.0
    role_evidence: list[str] = field(default_factory=list)


@dataclass
class Source:
    path: str
    sha256: str
    duration_s: float
    sample_rate: int
    channels: int


@dataclass
class Provenance:
    analyzer_version: str
    models: dict
    params: dict
    timings_s: dict = field(default_factory=dict)  # seconds spent in each stage


@dataclass
class Issue:
    """A problem met while analysing a call that did not stop it (the call's `errors` list)."""

    stage: str
    message: str
    start: float | None = None
    end: float | None = None


@dataclass
class PartyDynamics:
    role: str
    talk_time_s: float
    talk_share: float                   # of all talk time (overlap counted for both parties)
    speech_rate_cps: float              # characters (punctuation aside) per second of talk
    turns: int
    interruptions_made: int
    interrupted: int
    response_latency_s: float | None    # median time to answer the other party; negative = answers over them
    responses: int                      # turns that answer the other party (the latency's sample size)


@dataclass
class Silence:
    start: float
    end: float


@dataclass
class Interruption:
    at: float
    by: str
    by_role: str
    of: str
    of_role: str
    overlap_s: float
    yielded: bool                       # the interrupted party stopped soon after


@dataclass
class Period:
    """A quarter of the call."""

    start: float
    end: float
    parties: dict[str, PartyDynamics]
    overlap_s: float
    silence_s: float                    # in silences longer than dynamics.LONG_SILENCE_S
    interruptions: int


@dataclass
class Dynamics:
    duration_s: float
    parties: dict[str, PartyDynamics]   # by speaker id
    overlap_s: float                    # time with two or more parties talking
    silence_s: float                    # time with nobody talking
    silences: list[Silence]             # those longer than dynamics.LONG_SILENCE_S
    interruptions: list[Interruption]
    quarters: list[Period]

    @classmethod
    def from_dict(cls, data: dict) -> Dynamics:
        def parties(raw: dict) -> dict[str, PartyDynamics]:
            return {speaker: PartyDynamics(**values) for speaker, values in raw.items()}

        return cls(
            duration_s=data["duration_s"],
            parties=parties(data["parties"]),
            overlap_s=data["overlap_s"],
            silence_s=data["silence_s"],
            silences=[Silence(**s) for s in data["silences"]],
            interruptions=[Interruption(**i) for i in data["interruptions"]],
            quarters=[Period(**{**q, "parties": parties(q["parties"])}) for q in data["quarters"]],
        )


@dataclass
class Peak:
    series: str                         # "collector_pressure" or "borrower_stress"
    t: float
    value: float
    turn: int                           # index into `turns` of the turn that caused it
    speaker: str
    text: str


@dataclass
class TimelineQuarter:
    start: float
    end: float
    collector_pressure_mean: float
    collector_pressure_max: float
    borrower_stress_mean: float
    borrower_stress_max: float


@dataclass
class Timelines:
    """Per-turn pressure, stress and emotion sampled every `step_s`, carried between turns and smoothed."""

    step_s: float
    t: list[float]
    collector_pressure: list[float]
    borrower_stress: list[float]
    emotion: dict[str, dict[str, list[float]]]     # role → emotion label → series
    quarters: list[TimelineQuarter]
    peaks: list[Peak]                               # highest first within each series
    weights: dict[str, dict[str, float]]            # the fusion weights the turn scores were made with

    @classmethod
    def from_dict(cls, data: dict) -> Timelines:
        return cls(**{**data, "quarters": [TimelineQuarter(**q) for q in data["quarters"]],
                      "peaks": [Peak(**p) for p in data["peaks"]]})


@dataclass
class Flag:
    """A rule of the rulebook met in the call, with the words that met it."""

    rule: str
    rule_version: str                   # the rulebook's version
    category: str                       # threat, third_party, insult, harassment, privacy, self_harm, hardship
    severity: str                       # low, medium, high, critical
    start: float
    end: float
    role: str
    speaker: str | None                 # None for a flag on the call as a whole (call hours, call frequency)
    evidence: str
    confidence: float                   # 0…1
    turn: int | None = None             # index into `turns`


@dataclass
class CallResult:
    call_id: str
    source: Source
    speakers: list[Speaker]
    turns: list[Turn]
    provenance: Provenance
    metrics: Dynamics
    timelines: Timelines
    flags: list[Flag] = field(default_factory=list)
    risk: float = 0.0                   # 0…1, from the flags' severities and confidences (flags.risk)
    review_priority: str = "none"       # urgent, high, medium, low, none
    metadata: dict = field(default_factory=dict)  # what the manifest says of the call (ids, start time, …)
    errors: list[Issue] = field(default_factory=list)
    schema: str = SCHEMA

    def speaker(self, speaker_id: str) -> Speaker:
        return next(s for s in self.speakers if s.id == speaker_id)

    def to_dict(self) -> dict:
        data = asdict(self)
        return {"schema": data.pop("schema"), **data}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=1)

    @classmethod
    def from_dict(cls, data: dict) -> CallResult:
        if data.get("schema") != SCHEMA:
            raise ValueError(f"not an {SCHEMA} result (schema={data.get('schema')!r})")
        return cls(
            call_id=data["call_id"],
            source=Source(**data["source"]),
            speakers=[Speaker(**s) for s in data["speakers"]],
            turns=[Turn.from_dict(t) for t in data["turns"]],
            provenance=Provenance(**data["provenance"]),
            metrics=Dynamics.from_dict(data["metrics"]),
            timelines=Timelines.from_dict(data["timelines"]),
            flags=[Flag(**f) for f in data["flags"]],
            risk=data["risk"],
            review_priority=data["review_priority"],
            metadata=data["metadata"],
            errors=[Issue(**e) for e in data.get("errors", [])],
        )

    @classmethod
    def load(cls, path: str | Path) -> CallResult:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def transcript(self) -> str:
        """Role-labelled plain text, one turn a line, with the turn's emotion and its most likely tactic or state."""
        lines = []
        for turn in self.turns:
            stamp = f"[{_clock(turn.start)} - {_clock(turn.end)}]"
            tags = [turn.emotion.label] if turn.emotion else []
            if turn.top_act():
                tags.append(turn.top_act())
            tag = f" [{', '.join(tags)}]" if tags else ""
            lines.append(f"{stamp} {turn.role} ({turn.speaker}){tag}: {turn.text}")
        if self.flags:
            lines += ["", f"Flags (risk {self.risk:.2f}, review priority {self.review_priority}):"]
            for flag in self.flags:
                who = f"{flag.role} ({flag.speaker})" if flag.speaker else flag.role
                lines.append(f"[{_clock(flag.start)} - {_clock(flag.end)}] {flag.category} ({flag.severity}, "
                             f"{flag.rule}, {flag.confidence:.2f}) {who}: {flag.evidence}")
        return "\n".join(lines) + "\n"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60.0)
    return f"{int(minutes):02d}:{secs:05.2f}"
