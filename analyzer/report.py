"""A call's report for a reviewer who does not read JSON: one self-contained HTML page (the chart embedded, no
network needed to open it) and the chart alone as a PNG.

The chart: collector pressure and borrower stress over the call with their peaks and the flagged stretches (orange), and below it each party's turns coloured by their emotion. The page adds the call's figures, the flags with their
evidence, the peaks with the words that caused them, the quarters, and the transcript coloured by emotion with timestamps.
"""

from __future__ import annotations

import base64
import io

from jinja2 import Environment, PackageLoader, select_autoescape
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .result import CallResult

EMOTION_COLOURS = {
    "neutral": "#c8c8c8", "happy": "#5cb85c", "angry": "#d9342b", "sad": "#3b6fc4", "anxious": "#8e44ad",
    "surprised": "#f0a30a", "disgusted": "#8d6e3f",
}
PRESSURE_COLOUR, STRESS_COLOUR, FLAG_COLOUR = "#c0392b", "#2471a3", "#e67e22"
ROLE_ROWS = ("collector", "borrower")


def chart(result: CallResult) -> bytes:
    """The timelines and emotion bands as PNG bytes (ASCII labels only: no CJK font is assumed)."""
    timelines = result.timelines
    figure = Figure(figsize=(11, 4.6), dpi=110, layout="constrained")
    lines, bands = figure.subplots(2, 1, sharex=True, height_ratios=[3, 1.1])
    lines.plot(timelines.t, timelines.collector_pressure, color=PRESSURE_COLOUR, lw=2, label="collector pressure")
    lines.plot(timelines.t, timelines.borrower_stress, color=STRESS_COLOUR, lw=2, label="borrower stress")
    for peak in timelines.peaks:
        colour = PRESSURE_COLOUR if peak.series == "collector_pressure" else STRESS_COLOUR
        lines.plot(peak.t, peak.value, "o", color=colour, ms=7, mec="white")
        lines.annotate(f"#{peak.turn + 1}", (peak.t, peak.value), textcoords="offset points", xytext=(0, 7),
                       ha="center", fontsize=8, color=colour)
    for flag in result.flags:
        lines.axvspan(flag.start, flag.end, color=FLAG_COLOUR, alpha=0.25, lw=0)
        lines.plot((flag.start + flag.end) / 2, 1.02, "v", color=FLAG_COLOUR, ms=7)
    lines.set_ylim(0, 1.05)
    lines.set_ylabel("0 … 1")
    lines.grid(alpha=0.3)
    lines.legend(loc="upper left", fontsize=8, frameon=False, ncols=2)
    lines.set_title(f"{result.call_id}  ({result.source.duration_s:.0f} s)", loc="left", fontsize=10)

    for row, role in enumerate(ROLE_ROWS):
        for turn in result.turns:
            if turn.role == role and turn.emotion:
                bands.broken_barh([(turn.start, turn.end - turn.start)], (row - 0.4, 0.8),
                                  color=EMOTION_COLOURS.get(turn.emotion.label, "#999999"))
    bands.set_yticks(range(len(ROLE_ROWS)), ROLE_ROWS, fontsize=8)
    bands.set_ylim(-0.6, len(ROLE_ROWS) - 0.4)
    bands.invert_yaxis()
    bands.set_xlim(0, result.source.duration_s)
    bands.set_xlabel("seconds")
    bands.legend(handles=[Patch(color=colour, label=label) for label, colour in EMOTION_COLOURS.items()],
                 loc="upper center", bbox_to_anchor=(0.5, -0.55), ncols=len(EMOTION_COLOURS), fontsize=8,
                 frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def html(result: CallResult, png: bytes) -> str:
    environment = Environment(loader=PackageLoader("analyzer", "templates"), autoescape=select_autoescape())
    environment.filters["clock"] = clock
    return environment.get_template("report.html").render(
        call=result, chart=base64.b64encode(png).decode("ascii"), colours=EMOTION_COLOURS,
    )


def render(result: CallResult) -> tuple[str, bytes]:
    """The report page and the chart, for <call_id>.html and <call_id>.png."""
    png = chart(result)
    return html(result, png), png


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes:02d}:{secs:02d}"
