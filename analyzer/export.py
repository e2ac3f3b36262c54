"""Tables out of the store, as CSV and Parquet: calls, speakers, turns, flags, timelines, metrics, reviews (and the
failures and runs). The de-identified research export hashes every id, keeps no transcript text, evidence, audio path or
file hash, and redacts personal data (phone, ID and bank card numbers, addresses) in any text it keeps."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet

from .store import METADATA_COLUMNS, Store

FORMATS = ("csv", "parquet")
# what the research export leaves out: text that was said, where the audio is, what identifies the recording
# (a reviewer's note may quote the call)
PRIVATE_COLUMNS = {"path", "audio_sha256", "text", "evidence", "metadata", "result", "fingerprint", "scores", "note"}
ID_COLUMNS = ("call_id", "collector_id", "borrower_id", "reviewer")
RESEARCH_TABLES = ("calls", "speakers", "turns", "flags", "timelines", "metrics", "reviews")
ALL_TABLES = (*RESEARCH_TABLES, "failures", "runs")

_DIGITS = "0-9０-９"
_CHINESE_DIGITS = "零〇一二三四五六七八九幺两"
_SEPARATOR = r"[\s\-－—]?"
# order matters: the longer numbers first, so that an ID number is not taken for a phone number and a card
PII_PATTERNS = [
    ("身份证号", re.compile(rf"(?<![{_DIGITS}])[1-9]\d{{5}}{_SEPARATOR}(?:19|20)\d{{2}}{_SEPARATOR}"
                            rf"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]){_SEPARATOR}\d{{3}}[\dXx](?![{_DIGITS}])")),
    ("银行卡号", re.compile(rf"(?<![{_DIGITS}])(?:\d{_SEPARATOR}){{15,18}}\d(?![{_DIGITS}])")),
    ("电话", re.compile(rf"(?<![{_DIGITS}])(?:(?:\+|00)?86{_SEPARATOR})?1[3-9]\d{_SEPARATOR}\d{{4}}{_SEPARATOR}"
                        rf"\d{{4}}(?![{_DIGITS}])")),
    ("电话", re.compile(rf"(?<![{_DIGITS}])0\d{{2,3}}{_SEPARATOR}\d{{7,8}}(?![{_DIGITS}])")),
    # numbers spoken digit by digit, as ASR writes them (一三八…), and any other long run of digits
    ("号码", re.compile(rf"[{_CHINESE_DIGITS}](?:[\s，,]?[{_CHINESE_DIGITS}]){{6,}}")),
    ("号码", re.compile(rf"(?:[{_DIGITS}][\s\-]?){{6,}}[{_DIGITS}]")),
    # an address: administrative areas, roads or estates, and a house number
    ("地址", re.compile(
        r"(?:[\u4e00-\u9fa5]{1,8}?(?:省|自治区|市|区|县|镇|乡|街道|村|路|大道|街|巷|弄|胡同|小区|花园|新村|公寓|大厦|社区)){1,6}"
        rf"(?:[{_DIGITS}{_CHINESE_DIGITS}十百]+(?:号院|号楼|号|栋|幢|座|单元|楼|层|室|弄)[\-－]?)+"
        r"|(?:[\u4e00-\u9fa5]{2,8}?(?:省|自治区|市)){1,2}[\u4e00-\u9fa5]{1,8}?(?:区|县|镇|乡|街道|路|大道|街)")),
]


def redact(text: str) -> str:
    """The text with phone numbers, 身份证号, bank card numbers, addresses and other long numbers replaced by
    [电话], [身份证号], [银行卡号], [地址], [号码]."""
    for label, pattern in PII_PATTERNS:
        text = pattern.sub(f"[{label}]", text)
    return text


def export(store: Store, out: Path, formats: tuple[str, ...] = FORMATS, deidentify: bool = False,
           salt: str = "", redact_text: bool = False) -> list[Path]:
    """Write each table as <out>/<table>.csv and/or .parquet; return the files written.

    `deidentify`: the research export (hashed ids with `salt`, no text, no paths, PII redacted in what is kept).
    `redact_text`: the full export with PII redacted in the transcript text, evidence and metadata.
    """
    unknown = set(formats) - set(FORMATS)
    if unknown or not formats:
        raise ValueError(f"export formats are {', '.join(FORMATS)} (got {', '.join(formats) or 'none'})")
    if deidentify and not salt:
        raise ValueError("a de-identified export needs a salt for its hashed ids (--salt or ANALYZER_EXPORT_SALT); "
                         "keep it secret, and use the same one to link exports")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for table in RESEARCH_TABLES if deidentify else ALL_TABLES:
        rows = [_row(table, row, deidentify, salt, redact_text) for row in store.rows(table)]
        columns = _columns(table, store, rows, deidentify)
        rows = [{column: row.get(column) for column in columns} for row in rows]
        data = pa.Table.from_pylist(rows, schema=_schema(columns, rows))
        for fmt in formats:
            target = out / f"{table}.{fmt}"
            partial = target.with_name(f".{target.name}.partial")
            if fmt == "csv":
                pyarrow.csv.write_csv(data, partial)
            else:
                pyarrow.parquet.write_table(data, partial)
            partial.replace(target)
            written.append(target)
    return written


def _row(table: str, row: dict, deidentify: bool, salt: str, redact_text: bool) -> dict:
    if table == "timelines":  # the emotion series as columns: collector_angry, borrower_sad, …
        emotion = json.loads(row.pop("emotion"))
        row.update({f"{role}_{label}": value for role, labels in emotion.items() for label, value in labels.items()})
    if table == "calls":  # the manifest's other columns, as columns
        extra = {k: v for k, v in json.loads(row["metadata"]).items() if k not in METADATA_COLUMNS}
        row.update({f"meta_{k}": str(v) for k, v in extra.items()})
    if not deidentify:
        if redact_text:
            for column in ("text", "evidence", "metadata", "note"):
                if row.get(column):
                    row[column] = redact(row[column])
            for column in row:
                if column.startswith("meta_") and isinstance(row[column], str):
                    row[column] = redact(row[column])
        return row
    kept = {}
    for column, value in row.items():
        if column in PRIVATE_COLUMNS:
            continue
        if column in ID_COLUMNS:
            value = pseudonym(value, salt)
        elif column == "started_at" and value:
            value = value[:13]  # the date and hour of the call, no finer
        elif isinstance(value, str) and column.startswith("meta_"):
            value = redact(value)
        kept[column] = value
    return kept


def pseudonym(value: str | None, salt: str) -> str | None:
    """A stable, salted, one-way id: the same value and salt give the same pseudonym in every export."""
    if value in (None, ""):
        return None
    return hmac.new(salt.encode(), str(value).encode(), hashlib.sha256).hexdigest()[:16]


def _columns(table: str, store: Store, rows: list[dict], deidentify: bool) -> list[str]:
    base = [c for c in store.columns(table) if not (deidentify and c in PRIVATE_COLUMNS) and c != "emotion"]
    extra = dict.fromkeys(c for row in rows for c in row if c not in base)
    return base + list(extra)


def _schema(columns: list[str], rows: list[dict]) -> pa.Schema:
    """Every column's type from its values (a column that is empty throughout is text)."""
    fields = []
    for column in columns:
        values = [row.get(column) for row in rows if row.get(column) is not None]
        fields.append(pa.field(column, pa.array(values).type if values else pa.string()))
    return pa.schema(fields)
