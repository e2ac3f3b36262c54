"""Words to turns: every word gets the speaker whose speech it falls in, and no turn spans a speaker change."""

from __future__ import annotations

from .result import Turn, Word
from .speakers import SpeechRegion

PUNCTUATION = "，。？！、；：,.?!;:…"
COMMA_PAUSE_S = 0.45            # a pause this long inside a turn is written as a comma when Whisper gave none
QUESTION_ENDINGS = ("吗", "呢", "么", "没有")


def assign_speaker(word: Word, regions: list[SpeechRegion]) -> str:
    """The speaker whose speech overlaps the word most; the nearest speech when none overlaps."""
    best, best_overlap, nearest, nearest_gap = None, 0.0, None, float("inf")
    for region in regions:
        overlap = min(word.end, region.end) - max(word.start, region.start)
        if overlap > best_overlap:
            best, best_overlap = region.speaker, overlap
        gap = max(region.start - word.end, word.start - region.end, 0.0)
        if gap < nearest_gap:
            nearest, nearest_gap = region.speaker, gap
    return best or nearest


def build(tagged_words: list[tuple[str, Word]], regions: list[SpeechRegion], max_pause_s: float) -> list[Turn]:
    """Group each speaker's words into turns; a turn ends at a long pause or where another speaker speaks."""
    turns = []
    for speaker in dict.fromkeys(s for s, _ in tagged_words):
        words = sorted((w for s, w in tagged_words if s == speaker), key=lambda w: w.start)
        others = [r for r in regions if r.speaker != speaker]
        current: list[Word] = []
        for word in words:
            if current and _breaks(current[-1], word, others, max_pause_s):
                turns.append(_turn(speaker, current))
                current = []
            current.append(word)
        if current:
            turns.append(_turn(speaker, current))
    return sorted(turns, key=lambda t: (t.start, t.end))


def _breaks(previous: Word, word: Word, others: list[SpeechRegion], max_pause_s: float) -> bool:
    gap_start, gap_end = previous.end, word.start
    if gap_end - gap_start > max_pause_s:
        return True
    # another speaker talks in the gap: most of their speech lies between these two words (a reply, as opposed
    # to talk over this speaker's ongoing words)
    return any(min(r.end, gap_end) - max(r.start, gap_start) >= 0.5 * (r.end - r.start) for r in others)


def _turn(speaker: str, words: list[Word]) -> Turn:
    punctuate(words)
    text = "".join(w.text for w in words)
    return Turn(words[0].start, words[-1].end, speaker, "unknown", text, words)


def punctuate(words: list[Word]) -> None:
    """Add the punctuation Whisper left out: a comma at a pause, a full stop or question mark at the end."""
    for word, following in zip(words, words[1:]):
        if following.start - word.end >= COMMA_PAUSE_S and word.text[-1] not in PUNCTUATION:
            word.text += "，"
    last = words[-1]
    if last.text[-1] not in PUNCTUATION:
        last.text += "？" if last.text.endswith(QUESTION_ENDINGS) else "。"
    elif last.text[-1] in "，、；：,;:":
        last.text = last.text[:-1] + "。"
