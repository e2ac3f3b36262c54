"""The review app (`analyzer serve STORE`): a queue of stored calls, riskiest first, and a page per call with its
audio, pressure and stress timelines with the flags on them, the transcript by role, the flags with their
evidence and the reviewer's decision on each, and the call's dynamics. Server-rendered pages with a little
JavaScript (seeking the audio, sending decisions); no build step.

Only calls in the store are served: a call's audio is found by its id in the store, never by a path from the
request. With a token every request must carry it; read-only mode takes no decisions.
"""

from __future__ import annotations

import hmac
import threading
from importlib import resources
from pathlib import Path
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field

from . import __version__
from .report import EMOTION_COLOURS, FLAG_COLOUR, PRESSURE_COLOUR, STRESS_COLOUR, clock
from .store import PRIORITY_RANK, REVIEW_DECISIONS, Store

PAGE_SIZE = 50
TOKEN_COOKIE = "analyzer_token"
AUDIO_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".mp4": "audio/mp4",
               ".aac": "audio/aac", ".ogg": "audio/ogg", ".opus": "audio/ogg", ".flac": "audio/flac",
               ".webm": "audio/webm", ".amr": "audio/amr", ".wma": "audio/x-ms-wma"}
# a call's review status, in the order the queue offers them, as a condition on the queue's columns
_STATUS_SQL = {
    "to review": "flags > 0 AND decided = 0",
    "in progress": "decided > 0 AND decided < flags",
    "reviewed": "flags > 0 AND decided = flags",
    "no flags": "flags = 0",
}
STATUSES = tuple(_STATUS_SQL)
CHART_WIDTH, CHART_HEIGHT = 1000, 220

# every stored call with how many of its flags have a decision, and its review status from those counts
_QUEUE = f"""
SELECT * FROM (
    SELECT *, CASE {" ".join(f"WHEN {sql} THEN '{status}'" for status, sql in _STATUS_SQL.items())} END AS status
    FROM (
        SELECT c.call_id, c.started_at, c.collector_id, c.borrower_id, c.duration_s, c.risk, c.review_priority,
               c.priority_rank, c.flags, c.flag_categories, c.analyzed_at, c.collector_pressure_max,
               c.borrower_stress_max,
               (SELECT count(*) FROM flags f WHERE f.call_id = c.call_id AND EXISTS (
                   SELECT 1 FROM reviews r WHERE r.call_id = f.call_id AND r.rule = f.rule AND r.start_s = f.start_s))
                   AS decided
        FROM calls c))
"""


class Decision(BaseModel):
    decision: str = Field(pattern="^(" + "|".join(REVIEW_DECISIONS) + ")$")
    note: str = Field(default="", max_length=4000)
    reviewer: str = Field(min_length=1, max_length=200)


def create_app(store_path: str | Path, readonly: bool = False, token: str | None = None) -> FastAPI:
    store = Store(store_path, readonly=readonly)
    lock = threading.Lock()  # one SQLite connection, shared by the server's threads
    pages = Environment(loader=PackageLoader("analyzer", "templates"), autoescape=select_autoescape())
    pages.filters["clock"] = clock
    pages.globals.update(colours=EMOTION_COLOURS, readonly=readonly, version=__version__, store=Path(store_path).name)
    app = FastAPI(title="analyzer review", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(resources.files("analyzer") / "static")), name="static")

    if token:
        @app.middleware("http")
        async def require_token(request: Request, call_next):
            given = (request.headers.get("authorization", "").removeprefix("Bearer ").strip()
                     or request.query_params.get("token") or request.cookies.get(TOKEN_COOKIE) or "")
            if not hmac.compare_digest(given.encode(), token.encode()):
                return PlainTextResponse("401: this review app needs its token (open it once with ?token=…)", 401)
            if request.query_params.get("token"):  # once given in the address, kept in a cookie, dropped from it
                response = RedirectResponse(request.url.remove_query_params("token"), status_code=303)
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
                return response
            return await call_next(request)

    def render(name: str, **context) -> HTMLResponse:
        return HTMLResponse(pages.get_template(name).render(**context))

    @app.get("/", response_class=HTMLResponse)
    def queue(category: str = "", collector: str = "", date: str = "", status: str = "", page: int = 1):
        where, params = [], []
        if category:
            where.append("(',' || flag_categories || ',') LIKE ?")
            params.append(f"%,{category},%")
        if collector:
            where.append("collector_id = ?")
            params.append(collector)
        if date:
            where.append("substr(coalesce(started_at, analyzed_at), 1, 10) = ?")
            params.append(date)
        if status:
            if status not in STATUSES:
                raise HTTPException(400, f"status is one of: {', '.join(STATUSES)}")
            where.append("status = ?")
            params.append(status)
        condition = f" WHERE {' AND '.join(where)}" if where else ""
        page = max(1, page)
        with lock:
            matched = store.db.execute(f"SELECT count(*) FROM ({_QUEUE}){condition}", params).fetchone()[0]
            rows = store.db.execute(
                f"{_QUEUE}{condition} ORDER BY priority_rank DESC, risk DESC, call_id LIMIT ? OFFSET ?",
                [*params, PAGE_SIZE, (page - 1) * PAGE_SIZE]).fetchall()
            counts = _counts(store)
        calls = [dict(row) for row in rows]
        filters = {"category": category, "collector": collector, "date": date, "status": status}
        query = urlencode({k: v for k, v in filters.items() if v})
        return render("queue.html", calls=calls, matched=matched, page=page, query=query,
                      pages=max(1, -(-matched // PAGE_SIZE)), filters=filters, counts=counts, statuses=STATUSES,
                      priorities=list(PRIORITY_RANK))

    # call ids may hold "/" (a manifest's ids often do), so they match as paths; the routes with a suffix come
    # first, or the call page would take them
    @app.get("/calls/{call_id:path}/audio")
    def audio(call_id: str):
        with lock:
            row = store.db.execute("SELECT path FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        if row is None:
            raise HTTPException(404, f"no call {call_id!r} in the store")
        path = Path(row["path"])
        if not path.is_file():
            raise HTTPException(404, f"the recording is no longer at {path}")
        return FileResponse(path, media_type=AUDIO_TYPES.get(path.suffix.lower(), "application/octet-stream"))

    @app.post("/calls/{call_id:path}/flags/{flag}/review")
    def review(call_id: str, flag: int, decision: Decision):
        if readonly:
            raise HTTPException(403, "this review app is read-only")
        with lock:
            try:
                return store.record_review(call_id, flag, decision.decision, decision.note, decision.reviewer)
            except KeyError as error:
                raise HTTPException(404, str(error.args[0])) from None
            except ValueError as error:
                raise HTTPException(400, str(error)) from None

    @app.get("/calls/{call_id:path}", response_class=HTMLResponse)
    def call_page(call_id: str):
        with lock:
            try:
                result = store.result(call_id)
            except KeyError:
                raise HTTPException(404, f"no call {call_id!r} in the store") from None
            reviews = store.reviews(call_id)
        decisions = [reviews.get((flag.rule, flag.start)) for flag in result.flags]
        flagged_turns = {flag.turn for flag in result.flags if flag.turn is not None}
        return render("call.html", call=result, decisions=decisions, flagged_turns=flagged_turns,
                      chart=_chart(result))

    app.state.store = store
    return app


def _counts(store: Store) -> dict:
    db = store.db
    priorities = dict(db.execute("SELECT review_priority, count(*) FROM calls GROUP BY review_priority").fetchall())
    counted = dict(db.execute(f"SELECT status, count(*) FROM ({_QUEUE}) GROUP BY status").fetchall())
    statuses = {status: counted.get(status, 0) for status in STATUSES}
    categories = dict(db.execute("SELECT category, count(DISTINCT call_id) FROM flags GROUP BY category "
                                 "ORDER BY 2 DESC").fetchall())
    collectors = [row[0] for row in db.execute("SELECT DISTINCT collector_id FROM calls WHERE collector_id IS NOT "
                                               "NULL ORDER BY 1")]
    total = db.execute("SELECT count(*) FROM calls").fetchone()[0]
    return {"total": total, "priorities": priorities, "statuses": statuses, "categories": categories,
            "collectors": collectors}


def _chart(result) -> dict:
    """The timelines as SVG polylines in a CHART_WIDTH x CHART_HEIGHT box, and the flags' and peaks' positions."""
    duration = max(result.source.duration_s, 1e-6)
    timelines = result.timelines

    def x(t: float) -> float:
        return round(t / duration * CHART_WIDTH, 1)

    def y(value: float) -> float:
        return round((1 - value) * (CHART_HEIGHT - 20) + 10, 1)

    def line(values: list[float]) -> str:
        return " ".join(f"{x(t)},{y(v)}" for t, v in zip(timelines.t, values))

    return {
        "width": CHART_WIDTH, "height": CHART_HEIGHT,
        "pressure": line(timelines.collector_pressure), "stress": line(timelines.borrower_stress),
        "flags": [{"index": i, "x": x(f.start), "width": max(2.0, x(f.end) - x(f.start)), "flag": f}
                  for i, f in enumerate(result.flags)],
        "peaks": [{"x": x(p.t), "y": y(p.value), "peak": p} for p in timelines.peaks],
        "ticks": [{"x": x(t), "label": clock(t)} for t in range(0, int(duration) + 1, _tick_step(duration))],
        "colours": {"pressure": PRESSURE_COLOUR, "stress": STRESS_COLOUR, "flag": FLAG_COLOUR},
        "y": y,
    }


def _tick_step(duration: float) -> int:
    return next((step for step in (5, 10, 15, 30, 60, 120, 300, 600, 1800) if duration / step <= 12), 3600)
