"""Collector or borrower: each speaker's role from what they say, with the evidence and a confidence."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .result import Speaker, Turn

# (pattern, weight, why). Patterns include the homophones Whisper base writes on telephone audio
# (一七 for 逾期, 海款 for 还款).
COLLECTOR_CUES = [
    (r"我(是|们是).{0,14}(客服|专员|催收|法务|工作人员|经理|律师|金融|银行|平台|公司|中心|借|贷)", 3.0,
     "introduces themself as lender staff"),
    (r"(这里是|这边是).{0,14}(金融|银行|中心|平台|公司|客服|借|贷)", 3.0, "introduces themself as lender staff"),
    (r"工号", 2.0, "gives a staff number"),
    (r"请问(你|您)?是.{1,8}(先生|女士|小姐|本人|吗)", 2.0, "asks to confirm the borrower's identity"),
    (r"(你|您)(的|在我们.{0,6}的)(借款|贷款|欠款|账单|信用卡|分期|额度)", 2.0, "speaks of the other party's debt"),
    (r"逾期|一七|应还|还款额|最低还款|罚息|起诉|催收|停息挂账|本金", 1.0, "names overdue terms"),
    (r"(必须|最晚|立刻|马上|尽快|之前).{0,10}(还|处理|到账)", 1.5, "sets a deadline"),
    (r"(什么时候|几点|哪天).{0,6}(还|处理|方便)", 1.5, "asks when the debt will be paid"),
    (r"影响.{0,4}征信|征信记录", 1.5, "warns about the credit record"),
]
BORROWER_CUES = [
    (r"^(喂)?[，,。？?]?(哪位|谁啊|你是谁|什么事)", 1.5, "answers the phone"),
    (r"(对|是)[，,]?我是|^是我", 2.0, "confirms being the person called"),
    (r"我(没有?钱|手头|工资|失业|被.{0,6}裁员|生病|住院|交不起|拿不出|还不上|还不起)", 2.0,
     "speaks of their own finances"),
    (r"(我会|我一定|我尽快|我下周|我明天|我周.|我月底|我去).{0,8}(还|借|想办法)", 2.0, "promises to pay"),
    (r"(能不能|可不可以|再).{0,4}(宽限|晚几天|少还|缓)", 2.0, "asks for more time"),
    (r"你们", 0.7, "addresses the lender as 'you people'"),
    (r"别再打|烦不烦|骂人|吓唬人|抢钱", 1.5, "pushes back at the caller"),
    (r"我(欠|借)(了|的)", 1.5, "speaks of their own debt"),
]
GREETING = re.compile(r"^(喂|你好|您好|哪位)[，,。？?！!]*$")


@dataclass
class Cue:
    speaker: str
    role: str
    weight: float
    why: str
    time: float
    text: str


def find_cues(turns: list[Turn]) -> list[Cue]:
    cues = []
    for turn in turns:
        for role, table in (("collector", COLLECTOR_CUES), ("borrower", BORROWER_CUES)):
            for pattern, weight, why in table:
                match = re.search(pattern, turn.text)
                if match:
                    cues.append(Cue(turn.speaker, role, weight, why, turn.start, match.group(0)))
    first = next((t for t in turns if t.text), None)
    if first is not None:
        # the party who picks up says 喂 first; a caller who opens with more is usually the collector
        role = "borrower" if GREETING.match(first.text) else "collector"
        cues.append(Cue(first.speaker, role, 0.5, "speaks first" + (" with a greeting" if role == "borrower" else ""),
                        first.start, first.text[:12]))
    return cues


def assign(turns: list[Turn], speakers: list[Speaker]) -> None:
    """Set `role`, `role_confidence` and `role_evidence` on each speaker, and `role` on each turn."""
    cues = find_cues(turns)
    lean = {s.id: 0.0 for s in speakers}  # > 0 leans collector, < 0 leans borrower
    for cue in cues:
        if cue.speaker in lean:
            lean[cue.speaker] += cue.weight if cue.role == "collector" else -cue.weight

    for speaker in speakers:
        speaker.role, speaker.role_confidence = "unknown", 0.0
    talking = [s for s in speakers if any(t.speaker == s.id for t in turns)]
    if len(talking) == 1:
        only = talking[0]
        if abs(lean[only.id]) >= 2.0:
            only.role = "collector" if lean[only.id] > 0 else "borrower"
            only.role_confidence = _confidence(abs(lean[only.id]) - 2.0)
    elif len(talking) >= 2:
        collector = max(talking, key=lambda s: lean[s.id])
        borrower = min((s for s in talking if s is not collector), key=lambda s: lean[s.id])
        margin = lean[collector.id] - lean[borrower.id]
        if margin > 0:
            collector.role, borrower.role = "collector", "borrower"
            collector.role_confidence = borrower.role_confidence = _confidence(margin)

    for speaker in speakers:
        speaker.role_evidence = [
            f"{c.time:.1f}s {c.role} +{c.weight:g}: {c.why} ({c.text})" for c in cues if c.speaker == speaker.id
        ]
    roles = {s.id: s.role for s in speakers}
    for turn in turns:
        turn.role = roles.get(turn.speaker, "unknown")


def _confidence(margin: float) -> float:
    """0 with no margin between the two parties' cues, towards 1 as the margin grows (0.5 at a margin of 4)."""
    return round(margin / (margin + 4.0), 3)
