"""Compliance and vulnerability flags from a rulebook users can change (analyzer/rules/default.yaml documents
the format): each flag with the rule, the words, who said them and when; a call-level risk and review priority.

A rulebook is checked whole when it is loaded: any fault stops the run before a call is analysed, with the
file, line and reason, so no call is ever flagged by half a rulebook.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml
from opencc import OpenCC
from pypinyin import Style, pinyin

from .result import Flag, Turn

CATEGORIES = ("threat", "third_party", "insult", "harassment", "privacy", "self_harm", "hardship")
SEVERITY_WEIGHTS = {"low": 0.3, "medium": 0.6, "high": 0.9, "critical": 1.0}
ROLES = ("collector", "borrower", "unknown")
TEXT_KINDS = ("lexicon", "regex")
CONDITION_KINDS = ("lexicon", "regex", "act", "offensive", "other_party")
RULEBOOK_KEYS = {"rulebook", "version", "negations", "clause_negations", "rhetorical_denials", "exceptions",
                 "retractions", "lexicons", "rules"}
RULE_KEYS = {"id", "category", "severity", "roles", "description", "any", "all", "none", "confidence", "negatable",
             "window", "call", "told_of_others", "together"}
# questions whose 不 affirms: 躲到最后还不是被铐走 (they will be), 到时候不就是坐牢吗
AFFIRMING_QUESTIONS = ("还不是", "难道不是", "岂不是", "不就是", "还不得", "你不是说", "您不是说")
FUZZY_FACTOR = 0.8            # a pinyin match is worth this much of an exact one
CLAUSE = re.compile(r"[，。！？；,.!?;…\s]")
SENTENCE_END = re.compile(r"[。！？；.!?;]")
STATEMENT_END = re.compile(r"[。！；.!;]")  # a sentence that is not a question
# grammatical characters too frequent to stand for a misheard word: 去是 (进去是吧) is not 去死, 开到 (把船开到海中间)
# not 开刀
FUNCTION_CHARACTERS = frozenset("是的了在吧吗呢啊呀哦嘛个这那就都也还有我你他她它到")
# a numeral followed by another numeral or a unit is part of a number: 去十 in 刷进去十二万 is not 去死 (but 意四 in
# 活着没意四 may be 意思, and 一七 逾期)
NUMERALS = frozenset("零一二三四五六七八九十百千万亿两")
NUMBER_FOLLOWERS = NUMERALS | frozenset("块元角毛分号月日天年岁点个")
# nor can one of these anchor a two-character sound-alike: 写你 is not 卸你, 车子 not 局子, 大街 not 大家
WEAK_ANCHORS = FUNCTION_CHARACTERS | frozenset("们子家大小一上下")
# what may stand between a negation and the words it negates: 不会(去)(给你)起诉 / 没有人说(您是)骗子 / 没人要(让你)坐牢 /
# 不做上门催收 / 没有那种想不开的念头 / 没那个轻生的念头 / 我没有(真)想死 / 我没(说我)活不下去 / 不(是我)生病，是陪老婆产检 / 不(留)案底 /
# 老婆没(跟我)离婚 / 我没那么想不开
NEGATED_GAP = re.compile(r"(会|要|去|来|想|想过|过|打算|准备|用|再|能|可能|是要|是想|真的|真|随便|轻易|人说|说|说过|说我|是我|被|到|做|干|搞|留)*"
                         r"(给|对|把|跟|找|和|向|去|让)?(你|您|他|她|你们|您们|我|我们)?(是|的)?(那些|这些|那种|这种|那个|这个|那么|这么|什么)?$")
# the words said of someone other than the speaker: 住院的不是我
NOT_MINE = re.compile(r"的(人)?(并|可|也)?不是我")
# the words said of whom follows: 被裁的是我同事
SAID_OF = re.compile(r"的(人)?(是|都是)(我|我们)?的?")
# the speaker as the one told a story, not its subject
SPEAKER_TOLD = re.compile(r"(跟|对|和|同|给)我(说|讲)|告诉(过)?我")
# nor is someone the speaker gives or says something to, owes or turns to (猫托付给邻居了; 朋友那边也都道过别了;
# 还欠了朋友一屁股债)
RECIPIENT_MARKERS = ("给", "跟", "和", "向", "对", "同", "欠", "欠了", "找")
DEALT_WITH = ("那边", "那儿", "那里")
# a word asked back and then denied is an echo of the other side's word, not said (轻生？我从来没想过): its clause
# holds nothing else but a particle, ends in a question mark, and the next clause begins with a denial
ECHO_PARTICLES = frozenset("吗啊呀呢嘛吧么什啥哈嗯诶哎喂")
ECHO_DENIAL = re.compile(r"[，。！？；,.!?;…\s]*(我|俺)?(家|们)?((从来|从|才|哪|可|根本|压根|绝对|并|早就|早|也)?(不|没|冇|唔|勿|莫)(?!如)"
                         r"|哪会|哪有|哪能|怎么会|怎么可能|谁说|谁跟你说|谁跟您说|谁告诉你)")


class RulebookError(ValueError):
    """A rulebook that cannot be used; the message names the file, the line and the reason."""


@dataclass
class Condition:
    kind: str
    value: object                       # lexicon name, compiled regex, act label, threshold, or a nested condition
    minimum: float = 0.0


@dataclass
class Rule:
    id: str
    category: str
    severity: str
    roles: tuple[str, ...]
    description: str
    any: list[Condition] = field(default_factory=list)
    all: list[Condition] = field(default_factory=list)
    none: list[Condition] = field(default_factory=list)   # any of these holding keeps the rule from firing
    confidence: float = 0.9
    negatable: bool = True
    window: tuple[float, float] | None = None
    call: dict = field(default_factory=dict)
    # words naming someone else: the rule's words after one in their clause, with no 我 between, tell of that
    # person (隔壁单元的大爷跳楼了), and the turn is not flagged on them or on the classifier
    told_of_others: tuple[str, ...] = ()
    # "sentence": the words of the `all` conditions must stand in one sentence (家人 and 打电话 in two sentences of
    # an account, 您在单位加班。下周我再打电话提醒您, are no threat to call the family)
    together: str | None = None


@dataclass(eq=False)  # hashed by identity, for the per-text caches below
class Rulebook:
    name: str
    version: str
    lexicons: dict[str, list[str]]
    negations: list[str]
    clause_negations: list[str]       # these deny the rest of the clause, whatever comes between
    rules: list[Rule]
    path: str
    sha256: str = ""                  # of the rules as read (comments and layout aside): an edit reprocesses calls
    exceptions: list[str] = field(default_factory=list)   # phrases inside which no word counts (跳楼价)
    retractions: list[str] = field(default_factory=list)  # phrases taking back the words before them (是气话)
    # questions that deny the rest of their clause (谁说我要跳楼了), unless a negation follows (谁说我们不会起诉你)
    rhetorical_denials: list[str] = field(default_factory=list)
    word_lists: tuple = field(init=False, repr=False, compare=False)   # the lexicons, hashable for _exact_spans
    exception_phrases: tuple = field(init=False, repr=False, compare=False)  # hashable for _shields

    def __post_init__(self):
        self.word_lists = tuple((name, tuple(words)) for name, words in self.lexicons.items())
        self.exception_phrases = tuple(self.exceptions)

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "path": self.path, "rules": len(self.rules),
                "sha256": self.sha256}

    def only(self, kinds: set[str]) -> Rulebook:
        """The same rulebook with only conditions of these kinds (the evaluation's classifier-only and
        lexicon-only variants); rules left with nothing to test are dropped."""
        rules = []
        for rule in self.rules:
            kept_any = [c for c in rule.any if c.kind in kinds]
            kept_all = [c for c in rule.all if c.kind in kinds]
            if rule.call or (len(kept_all) == len(rule.all) and (kept_any or not rule.any) and (kept_any or kept_all)):
                rules.append(replace(rule, any=kept_any, all=kept_all))
        return replace(self, rules=rules)


def default_path() -> Path:
    return Path(str(resources.files("analyzer") / "rules" / "default.yaml"))


def load(path: str | Path | None = None) -> Rulebook:
    """Read and check a rulebook (the default one when `path` is None); raise RulebookError on any fault."""
    path = Path(path) if path else default_path()
    data = _read(path)
    if data.get("extends") is not None:
        if data["extends"] != "default":
            raise RulebookError(f"{path}: `extends` can only be `default` (got {data['extends']!r})")
        base = _read(default_path())
        disabled = set(data.get("disable") or [])
        overridden = {rule.get("id") for rule in data.get("rules") or [] if isinstance(rule, dict)}
        data = {
            **base, **{k: v for k, v in data.items() if k not in ("extends", "disable", "lexicons", "rules")},
            "lexicons": {**base.get("lexicons", {}), **(data.get("lexicons") or {})},
            "rules": [r for r in base["rules"] if r["id"] not in disabled | overridden] + list(data.get("rules") or []),
        }
        unknown = disabled - {r["id"] for r in base["rules"]}
        if unknown:
            raise RulebookError(f"{path}: `disable` names rules the default rulebook does not have: {sorted(unknown)}")
    return _build(data, path)


def apply(rulebook: Rulebook, turns: list[Turn], duration_s: float, metadata: dict | None = None) -> list[Flag]:
    """Every flag the rulebook raises in the call, in time order."""
    metadata = metadata or {}
    # the words are matched in simplified characters, which the rulebook and the analyzer's transcripts are
    # written in; a turn from elsewhere may be traditional (你這種騙子). The evidence quotes the turn as written.
    readable = [_simplified(turn) for turn in turns]
    found = []
    for rule in rulebook.rules:
        if rule.call:
            flag = _call_flag(rulebook, rule, metadata, duration_s)
            found.extend([flag] if flag else [])
            continue
        for index, turn in enumerate(turns):
            if turn.role not in rule.roles:
                continue
            if rule.window and not (rule.window[0] <= turn.start < rule.window[1]):
                continue
            flag = _turn_flag(rulebook, rule, readable, index, turn)
            if flag:
                found.append(flag)
    # one flag per turn and category: the most severe and most certain of the rules that met it
    strongest: dict[tuple, Flag] = {}
    for flag in found:
        key = (flag.turn, flag.category) if flag.turn is not None else (flag.rule,)
        if key not in strongest or _strength(flag) > _strength(strongest[key]):
            strongest[key] = flag
    return sorted(strongest.values(), key=lambda f: (f.start, f.category, f.rule))


def _strength(flag: Flag) -> tuple[float, float]:
    return SEVERITY_WEIGHTS[flag.severity], flag.confidence


def risk(flags: list[Flag]) -> float:
    """The chance that at least one flag is a real problem, each weighed by its severity."""
    return round(1.0 - math.prod(1.0 - SEVERITY_WEIGHTS[f.severity] * f.confidence for f in flags), 3)


def review_priority(flags: list[Flag], call_risk: float) -> str:
    if any(f.severity == "critical" for f in flags):
        return "urgent"
    if call_risk >= 0.7:
        return "high"
    if call_risk >= 0.3:
        return "medium"
    return "low" if flags else "none"


# --- matching ---------------------------------------------------------------------------------------------

@dataclass
class _Match:
    start: int                          # character offsets in the turn's text
    end: int
    confidence: float


_T2S = OpenCC("t2s")


def _simplified(turn: Turn) -> Turn:
    """The turn in simplified characters, its text the same length so that offsets into it hold for the original
    (t2s converts phrase by phrase, so it goes character by character where a phrase would change the length)."""
    text = _T2S.convert(turn.text)
    if len(text) != len(turn.text):
        text = "".join(converted if len(converted := _T2S.convert(c)) == 1 else c for c in turn.text)
    return turn if text == turn.text else replace(turn, text=text)


def _turn_flag(rulebook: Rulebook, rule: Rule, turns: list[Turn], index: int, written: Turn) -> Flag | None:
    """The flag `rule` raises on turn `index` of `turns` (in simplified characters), quoting `written`."""
    turn = turns[index]
    matched: list[list[_Match]] = []    # per text condition, in order
    scores: list[float] = []

    def holds(condition: Condition) -> bool:
        held, matches, score = _holds(rulebook, condition, turns, index, rule.confidence)
        if condition.kind in TEXT_KINDS:
            # a word inside another condition's word is not a second witness (联系 in 联系人)
            matches = [m for m in matches if not any(o.start <= m.start and m.end <= o.end and o != m
                                                     for others in matched for o in others)]
            matched.append(matches)
            return bool(matches)
        if held and score is not None:
            scores.append(score)
        return held

    every = all([holds(c) for c in rule.all])      # evaluate all, so every match is collected as evidence
    if every and rule.together:
        together = sum(c.kind in TEXT_KINDS for c in rule.all)
        matched[:together] = _in_one_sentence(turn.text, matched[:together])
        every = all(matched[:together])
    some = [holds(c) for c in rule.any]
    # a `none` condition vetoes: the classifier's threat in 报案回执可以申请停息 is an offer
    if not every or (rule.any and not any(some)) or any(_holds(rulebook, c, turns, index, 1.0)[0] for c in rule.none):
        return None
    text_matches = [m for matches in matched for m in matches]
    if rule.told_of_others:
        own = [m for m in text_matches if not _told_of_others(turn.text, m.start, m.end, rule.told_of_others)]
        if text_matches and not own:
            return None                 # the classifier read the same story (电影里的主角最后跳楼了)
        # or read a story without the words, someone else its subject from the first two clauses (我朋友去年网贷逾期，
        # 后来想不开了; not 我现在睡的都是朋友家的沙发 at the end of an account of one's own)
        if scores and not own:
            opening = _opening_end(turn.text)
            if _told_of_others(turn.text, opening, opening, rule.told_of_others):
                return None
        text_matches = own
    if scores and not text_matches and rule.negatable and _denied(rulebook, rule.category, turn.text):
        return None                     # the classifier heard a threat in 我们不会起诉您
    # the words and the classifier are two witnesses: either raises the confidence
    witnesses = [max((m.confidence for m in text_matches), default=0.0), max(scores, default=0.0)]
    confidence = 1.0 - math.prod(1.0 - c for c in witnesses)
    start, end, evidence = _evidence(written, text_matches)
    return Flag(rule.id, rulebook.version, rule.category, rule.severity, start, end, turn.role, turn.speaker,
                evidence, round(confidence, 3), index)


def _holds(rulebook: Rulebook, condition: Condition, turns: list[Turn], index: int,
           confidence: float) -> tuple[bool, list[_Match], float | None]:
    """Whether a condition holds in the turn, with its word matches or its classifier score."""
    turn = turns[index]
    if condition.kind in TEXT_KINDS:
        matches = _text_matches(rulebook, condition, turn.text, confidence)[0]
        return bool(matches), matches, None
    if condition.kind == "other_party":
        return any(other.speaker != turn.speaker and _text_matches(rulebook, condition.value, other.text, 1.0)[0]
                   for other in turns), [], None
    score = turn.acts.get(condition.value, 0.0) if condition.kind == "act" else (turn.offensive or 0.0)
    return score >= condition.minimum, [], score


def _opening_end(text: str) -> int:
    """Where the first two clauses of `text` end."""
    stops = [m.start() for m in CLAUSE.finditer(text) if m.start() > 0]
    return stops[1] if len(stops) > 1 else len(text)


def _told_of_others(text: str, start: int, end: int, others: tuple[str, ...]) -> bool:
    """The words at start:end are said of someone else: named before them in their sentence, with the speaker (我)
    not after but as the one told (我朋友跟我说她想过吃安眠药), or right after them (被裁的是我同事)."""
    said_of = SAID_OF.match(text, end)
    if said_of and text.startswith(others, said_of.end()):
        return True
    before = SPEAKER_TOLD.sub("", text[_sentence_start(text, start):start])
    for word in others:
        at = before.rfind(word)
        if at >= 0 and "我" not in before[at + len(word):] and not (
                before[:at].endswith(RECIPIENT_MARKERS) or before.startswith(DEALT_WITH, at + len(word))):
            return True
    return False


def _denied(rulebook: Rulebook, category: str, text: str) -> bool:
    """The turn names the category's words only under a negation (我不是骗子; 我们不会联系您家人), inside an
    exception phrase (跳楼价) or before a retraction (我说不活了是气话), or holds an exception phrase or a
    retraction and none of the words (忙得要死; 上次说要死要活的，其实是喝多了)."""
    negated = False
    for rule in rulebook.rules:
        if rule.category != category:
            continue
        for condition in rule.any + rule.all:
            if condition.kind in TEXT_KINDS:
                kept, was_negated = _text_matches(rulebook, condition, text, 1.0)
                if kept and not was_negated and condition in rule.any:
                    return False
                negated |= was_negated
    return negated or any(phrase in text for phrase in rulebook.exceptions) or bool(_retractions(rulebook, text))


def _text_matches(rulebook: Rulebook, condition: Condition, text: str,
                  confidence: float) -> tuple[list[_Match], bool]:
    """The condition's matches in `text` that are not negated, inside an exception phrase or taken back by a
    retraction, and whether any match was set aside for one of these reasons."""
    if condition.kind == "regex":
        spans = [(m.start(), m.end(), confidence) for m in condition.value.finditer(text) if m.end() > m.start()]
    else:
        exact = _exact_spans(text, rulebook.word_lists)
        spans = [(start, end, confidence) for start, end in exact[condition.value]]
        for word in rulebook.lexicons[condition.value]:
            if len(word) >= 2:
                spans.extend((start, start + len(word), confidence * FUZZY_FACTOR)
                             for start in _find_by_pinyin(text, word))
        # a word inside a longer listed word is part of that word: 儿子 in 龟儿子, 上门 in 找上门, 农药 in 喝农药 (denied
        # with it in 我没有要喝农药); and a sound-alike is not heard where it overlaps a listed word as written: 去世
        # is a death, not 去死, and 换身份证 has no 换肾
        written = [span for found in exact.values() for span in found]
        spans = [(start, end, worth) for start, end, worth in spans
                 if not any((a <= start and end <= b and b - a > end - start)
                            or (worth < confidence and a < end and start < b) for a, b in written)]
    shields = _shields(text, rulebook.exception_phrases)
    retracted = _retractions(rulebook, text)
    kept, negated = [], False
    for start, end, worth in spans:
        if (_is_negated(text, start, rulebook) or _echoed(text, start, end) or NOT_MINE.match(text, end)
                or any(a <= start and end <= b for a, b in shields)
                or any(_takes_back(retraction, _clause_index(text, end), start) for retraction in retracted)):
            negated = True
        else:
            kept.append(_Match(start, end, worth))
    return kept, negated


def _echoed(text: str, start: int, end: int) -> bool:
    """The words at start:end are asked back and denied (安眠药？我从来不碰那玩意儿)."""
    stop = CLAUSE.search(text, end)
    if stop is None or stop.group() not in "？?":
        return False
    rest = text[_clause_start(text, start):start] + text[end:stop.start()]
    return len(rest) <= 2 and all(c in ECHO_PARTICLES for c in rest) and bool(ECHO_DENIAL.match(text, stop.start()))


@lru_cache(maxsize=256)
def _shields(text: str, phrases: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where the exception phrases stand; found once per text, for every condition that asks."""
    return [(start, start + len(phrase)) for phrase in phrases for start in _find_exact(text, phrase)]


@lru_cache(maxsize=256)
def _retractions(rulebook: Rulebook, text: str) -> list[tuple[int, int]]:
    """Where each retraction phrase stands, itself not negated (不是开玩笑 takes nothing back): its clause (by
    index) and where its sentence begins. Found once per text, for every condition that asks."""
    return [(_clause_index(text, start), _sentence_start(text, start)) for phrase in rulebook.retractions
            for start in _find_exact(text, phrase) if not _is_negated(text, start, rulebook)]


def _takes_back(retraction: tuple[int, int], clause: int, start: int) -> bool:
    """A retraction takes back what was said before it in its sentence (我爸住院那会儿确实困难，不过现在他出院了，
    工作也稳定了), and the clause before it when that ends the sentence before (自杀？我才不会)."""
    retraction_clause, sentence_start = retraction
    return clause <= retraction_clause and (retraction_clause - clause <= 1 or start >= sentence_start)


def _in_one_sentence(text: str, groups: list[list[_Match]]) -> list[list[_Match]]:
    """Each group's matches that stand in a sentence where every group has one. A question runs on into the
    sentence after it (你老公知道吗？我这就打给他)."""
    shared = set.intersection(*({_sentence_start(text, m.start, STATEMENT_END) for m in group} for group in groups))
    return [[m for m in group if _sentence_start(text, m.start, STATEMENT_END) in shared] for group in groups]


def _sentence_start(text: str, position: int, ends: re.Pattern = SENTENCE_END) -> int:
    return max((m.end() for m in ends.finditer(text, 0, position)), default=0)


def _clause_start(text: str, position: int) -> int:
    return max((m.end() for m in CLAUSE.finditer(text, 0, position)), default=0)


def _clause_index(text: str, position: int) -> int:
    return len(CLAUSE.findall(text, 0, position))


@lru_cache(maxsize=1024)
def _exact_spans(text: str, word_lists: tuple) -> dict[str, list[tuple[int, int]]]:
    """Where each lexicon's words stand in the text, written exactly: {lexicon: [(start, end)]}. Found once per
    text, for every rule and condition that asks."""
    return {name: [(start, start + len(word)) for word in words for start in _find_exact(text, word)]
            for name, words in word_lists}


def _find_exact(text: str, word: str) -> list[int]:
    found, start = [], text.find(word)
    while start >= 0:
        found.append(start)
        start = text.find(word, start + 1)
    return found


@lru_cache(maxsize=65536)
def _find_by_pinyin(text: str, word: str) -> tuple[int, ...]:
    """Where `word` is written with other characters that sound alike: at least half of them exact (for a word of
    two, the exact one more than a common character) and none of the others a function character."""
    target = _word_sounds(word)
    found = []
    # only windows holding one of the word's characters as written can qualify
    candidates = {position - offset for offset, character in enumerate(word)
                  for position in _find_exact(text, character)}
    for start in sorted(c for c in candidates if 0 <= c <= len(text) - len(word)):
        window = text[start:start + len(word)]
        exact = sum(a == b for a, b in zip(window, word))
        if exact == len(word) or exact * 2 < len(word):
            continue                    # exact matches are found already; too few exact characters
        if any(a != b and a in FUNCTION_CHARACTERS for a, b in zip(window, word)):
            continue
        if any(a != b and a in NUMERALS and text[start + i + 1: start + i + 2] in NUMBER_FOLLOWERS
               for i, (a, b) in enumerate(zip(window, word))):
            continue
        if len(word) == 2 and all(a != b or a in WEAK_ANCHORS for a, b in zip(window, word)):
            continue
        if all(a == b or (t and _sound(a) == t) for a, b, t in zip(window, word, target)):
            found.append(start)
    return tuple(found)


# One reading each, not every reading a dictionary lists: ASR writes a sound-alike by its usual reading, and the
# rare ones make false matches (不 is also read fou, so 号不 would sound like 号服; 拘 also gou, so 被狗 like 被拘).
@lru_cache(maxsize=8192)
def _sound(character: str) -> str:
    """A character's usual toneless reading, folded over the confusions of telephone speech and accents."""
    reading = pinyin(character, style=Style.NORMAL, errors=lambda _: [""])[0][0]
    return _fold(reading) if reading.isalpha() else ""


@lru_cache(maxsize=4096)
def _word_sounds(word: str) -> tuple[str, ...]:
    """A lexicon word's reading character by character, as the phrase is read (长 in 家长 is zhang)."""
    readings = pinyin(word, style=Style.NORMAL, errors=lambda chunk: [""] * len(chunk))
    if len(readings) != len(word):
        return tuple(_sound(c) for c in word)
    return tuple(_fold(r[0]) if r[0].isalpha() else "" for r in readings)


def _fold(syllable: str) -> str:
    syllable = re.sub(r"^([zcs])h", r"\1", syllable)
    syllable = re.sub(r"^l", "n", syllable)
    return re.sub(r"ng$", "n", syllable)


def _is_negated(text: str, start: int, rulebook: Rulebook) -> bool:
    """A negation word right before the match, with at most a modal and an object between (没有要找您家人), or
    one of the strong ones anywhere before it in the clause (我们绝对不会给您家人打电话), or a rhetorical
    question before it in the clause (我什么时候说过要去您家了), which a negation after it turns round
    (谁说我们不会起诉你)."""
    before = text[_clause_start(text, start):start]
    asked = max((before.rfind(cue) + len(cue) for cue in rulebook.rhetorical_denials if cue in before), default=-1)
    if asked >= 0:
        return not any(cue in before[asked:] for cue in rulebook.negations)
    if any(not _affirms(before, found.start(), cue)
           for cue in rulebook.clause_negations for found in re.finditer(re.escape(cue), before)):
        return True
    for cue in rulebook.negations:
        for found in re.finditer(re.escape(cue), before):
            if _asks(before, found.start(), cue):
                continue                # 要不要跳下去 asks, it does not deny
            if _affirms(before, found.start(), cue):
                continue                # 躲到最后还不是被铐走 says they will be
            if before.startswith("不过", found.start()) or before[found.start() - 1:found.start() + 1] == "要不":
                continue                # 不过 is "but" (不过现在都好了), 只不过 "only"; 要不 "how about" (要不带着孩子一起走了算了)
            if NEGATED_GAP.fullmatch(before[found.end():]):
                return True
    return False


def _affirms(text: str, at: int, cue: str) -> bool:
    """The negation `cue` at `at` is the 不 of a rhetorical question that affirms (还不是, 难道不是, 不就是)."""
    negator = at + cue.find("不")
    return negator >= at and any(negator >= phrase.index("不") and text.startswith(phrase, negator - phrase.index("不"))
                                 for phrase in AFFIRMING_QUESTIONS)


def _asks(text: str, at: int, cue: str) -> bool:
    """The 不 of an A-not-A question (要不要, 想不想, 是不是)."""
    negator = cue.find("不")
    if negator < 0:
        return False
    position = at + negator
    return 0 < position < len(text) - 1 and text[position - 1] == text[position + 1]


def _evidence(turn: Turn, matches: list[_Match]) -> tuple[float, float, str]:
    """The clause(s) holding the matched words, and their time from the word timestamps; the whole turn when the
    flag rests on the classifier alone."""
    if not matches:
        return turn.start, turn.end, turn.text
    first, last = min(m.start for m in matches), max(m.end for m in matches)
    clause_start = _clause_start(turn.text, first)
    following = CLAUSE.search(turn.text, last)
    clause_end = following.start() + 1 if following else len(turn.text)
    start, end, offset = turn.end, turn.start, 0
    for word in turn.words:
        word_end = offset + len(word.text)
        if word_end > clause_start and offset < clause_end:
            start, end = min(start, word.start), max(end, word.end)
        offset = word_end
    if start > end:                     # words not available: the turn's own span
        start, end = turn.start, turn.end
    return round(start, 2), round(end, 2), turn.text[clause_start:clause_end]


def _call_flag(rulebook: Rulebook, rule: Rule, metadata: dict, duration_s: float) -> Flag | None:
    evidence = None
    if "outside_hours" in rule.call and metadata.get("started_at"):
        opens, closes = (time.fromisoformat(t) for t in rule.call["outside_hours"])
        started = datetime.fromisoformat(str(metadata["started_at"]))
        if not opens <= started.time() < closes:
            evidence = f"call started at {started:%H:%M} (allowed {opens:%H:%M}-{closes:%H:%M})"
    if "max_calls_per_day" in rule.call and metadata.get("calls_to_borrower_that_day") is not None:
        calls = int(metadata["calls_to_borrower_that_day"])
        if calls > rule.call["max_calls_per_day"]:
            evidence = f"{calls} calls to this borrower that day (at most {rule.call['max_calls_per_day']})"
    if not evidence:
        return None
    return Flag(rule.id, rulebook.version, rule.category, rule.severity, 0.0, round(duration_s, 2),
                rule.roles[0], None, evidence, 1.0)


# --- loading and checking -----------------------------------------------------------------------------------

class _LineLoader(yaml.SafeLoader):
    """Keeps each mapping's line, so that a fault can be shown where it is."""


def _mapping_with_line(loader, node):
    mapping = loader.construct_mapping(node, deep=True)
    mapping["__line__"] = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)


def _read(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise RulebookError(f"{path}: cannot read the rulebook: {error}") from error
    try:
        data = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise RulebookError(f"{path}{where}: not valid YAML: {getattr(error, 'problem', None) or error}") from error
    if not isinstance(data, dict):
        raise RulebookError(f"{path}: a rulebook is a mapping with `version`, `lexicons` and `rules`")
    return data


def _build(data: dict, path: Path) -> Rulebook:
    def fail(line, message):
        raise RulebookError(f"{path}:{line}: {message}")

    top = data.get("__line__", 1)
    unknown = set(data) - RULEBOOK_KEYS - {"__line__"}
    if unknown:
        fail(top, f"unknown key(s) {sorted(unknown)}: a rulebook has {sorted(RULEBOOK_KEYS)}")
    for key in ("rulebook", "version", "rules"):
        if not data.get(key):
            fail(top, f"`{key}` is missing")
    lexicons = {}
    for name, words in (data.get("lexicons") or {}).items():
        if name == "__line__":
            continue
        if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
            fail(data["lexicons"]["__line__"], f"lexicon `{name}` must be a list of words")
        lexicons[name] = words
    negations, clause_negations = data.get("negations") or [], data.get("clause_negations") or []
    exceptions, retractions = data.get("exceptions") or [], data.get("retractions") or []
    rhetorical_denials = data.get("rhetorical_denials") or []
    for key, words in (("negations", negations), ("clause_negations", clause_negations), ("exceptions", exceptions),
                       ("retractions", retractions), ("rhetorical_denials", rhetorical_denials)):
        if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
            fail(top, f"`{key}` must be a list of words")
    if not isinstance(data["rules"], list):
        fail(top, "`rules` must be a list")
    rules, seen = [], set()
    for raw in data["rules"]:
        if not isinstance(raw, dict):
            fail(top, f"a rule must be a mapping (got {raw!r})")
        rule = _build_rule(raw, lexicons, fail)
        if rule.id in seen:
            fail(raw["__line__"], f"rule id `{rule.id}` is used twice")
        seen.add(rule.id)
        rules.append(rule)
    content = json.dumps(_without_lines(data), ensure_ascii=False, sort_keys=True, default=str)
    return Rulebook(str(data["rulebook"]), str(data["version"]), lexicons, negations, clause_negations, rules,
                    str(path), hashlib.sha256(content.encode()).hexdigest(), exceptions, retractions,
                    rhetorical_denials)


def _without_lines(value):
    if isinstance(value, dict):
        return {k: _without_lines(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [_without_lines(v) for v in value]
    return value


def _build_rule(raw: dict, lexicons: dict, fail) -> Rule:
    line = raw["__line__"]
    unknown = set(raw) - RULE_KEYS - {"__line__"}
    if unknown:
        fail(line, f"unknown key(s) {sorted(unknown)} in a rule")
    if not raw.get("id"):
        fail(line, "a rule needs an `id`")
    label = f"rule `{raw['id']}`"
    if raw.get("category") not in CATEGORIES:
        fail(line, f"{label}: category must be one of {', '.join(CATEGORIES)} (got {raw.get('category')!r})")
    if raw.get("severity") not in SEVERITY_WEIGHTS:
        fail(line, f"{label}: severity must be one of {', '.join(SEVERITY_WEIGHTS)} (got {raw.get('severity')!r})")
    roles = raw.get("roles") or ["collector", "borrower"]
    if not isinstance(roles, list) or not set(roles) <= set(ROLES):
        fail(line, f"{label}: roles must be a list of {', '.join(ROLES)}")
    conditions = {part: [_build_condition(c, lexicons, fail, line, label) for c in raw.get(part) or []]
                  for part in ("any", "all", "none")}
    call = {k: v for k, v in (raw.get("call") or {}).items() if k != "__line__"}
    if not conditions["any"] and not conditions["all"] and not call:
        fail(line, f"{label}: needs conditions under `any` or `all`, or a `call` condition")
    _check_call(call, fail, line, label)
    confidence = raw.get("confidence", 0.9)
    if not isinstance(confidence, (int, float)) or not 0 < confidence <= 1:
        fail(line, f"{label}: confidence must be a number in (0, 1]")
    others = raw.get("told_of_others") or []
    if not isinstance(others, list) or not all(isinstance(w, str) and w for w in others):
        fail(line, f"{label}: told_of_others must be a list of words")
    if raw.get("together") not in (None, "sentence"):
        fail(line, f"{label}: together must be `sentence` (got {raw.get('together')!r})")
    window = raw.get("window")
    if window is not None and (not isinstance(window, list) or len(window) != 2 or window[0] >= window[1]):
        fail(line, f"{label}: window must be [FROM_S, TO_S] with FROM_S < TO_S")
    return Rule(str(raw["id"]), raw["category"], raw["severity"], tuple(roles), str(raw.get("description", "")),
                conditions["any"], conditions["all"], conditions["none"], float(confidence), bool(raw.get("negatable", True)),
                tuple(window) if window else None, call, tuple(others), raw.get("together"))


def _build_condition(raw, lexicons: dict, fail, line: int, label: str) -> Condition:
    line = raw.get("__line__", line) if isinstance(raw, dict) else line
    keys = set(raw) - {"__line__", "min"} if isinstance(raw, dict) else set()
    if len(keys) != 1 or not keys <= set(CONDITION_KINDS):
        fail(line, f"{label}: a condition is one of {', '.join(CONDITION_KINDS)} (got {raw!r})")
    kind = keys.pop()
    value = raw[kind]
    if kind == "lexicon" and value not in lexicons:
        fail(line, f"{label}: no lexicon named `{value}`")
    if kind == "regex":
        try:
            value = re.compile(str(value))
        except re.error as error:
            fail(line, f"{label}: bad regular expression {raw[kind]!r}: {error}")
    if kind == "other_party":
        if not isinstance(value, dict):
            fail(line, f"{label}: other_party takes a lexicon or regex condition")
        value = _build_condition(value, lexicons, fail, line, label)
        if value.kind not in TEXT_KINDS:
            fail(line, f"{label}: other_party takes a lexicon or regex condition")
    minimum = raw.get("min", 0.0)
    if kind == "offensive":
        minimum, value = value, "offensive"
    if kind in ("act", "offensive") and (not isinstance(minimum, (int, float)) or not 0 <= minimum <= 1):
        fail(line, f"{label}: a classifier condition needs a probability `min` between 0 and 1")
    return Condition(kind, value, float(minimum))


def _check_call(call: dict, fail, line: int, label: str) -> None:
    for key, value in call.items():
        if key == "outside_hours":
            try:
                opens, closes = (time.fromisoformat(t) for t in value)
            except (TypeError, ValueError):
                fail(line, f"{label}: outside_hours must be [\"HH:MM\", \"HH:MM\"]")
            if opens >= closes:
                fail(line, f"{label}: outside_hours must open before it closes")
        elif key == "max_calls_per_day":
            if not isinstance(value, int) or value < 1:
                fail(line, f"{label}: max_calls_per_day must be a whole number of at least 1")
        else:
            fail(line, f"{label}: unknown call condition `{key}`")
