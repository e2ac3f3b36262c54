"""Batch runs over an archive: killed with SIGKILL and resumed, the store, re-analysis when the rules change, the
Ray engine, and the exports (full and de-identified)."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from analyzer import batch
from analyzer.audio import SAMPLE_RATE, load
from analyzer.export import pseudonym, redact
from analyzer.result import CallResult
from analyzer.store import Store
from conftest import SAMPLE_IDS, SAMPLES, encode

CLIPS = 20
CLIP_S = 12.0


def analyzer(*argv: str, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analyzer.cli", *argv], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """20 different 12-second calls cut from the samples (mono and stereo), as an archive folder."""
    folder = tmp_path_factory.mktemp("archive")
    for n in range(CLIPS):
        samples = load(SAMPLES / f"{SAMPLE_IDS[n % len(SAMPLE_IDS)]}.wav").samples
        start = int((n // len(SAMPLE_IDS)) * 9.0 * SAMPLE_RATE)
        piece = samples[:, start:start + int(CLIP_S * SAMPLE_RATE)]
        encode(piece, SAMPLE_RATE, folder / f"clip_{n:02d}.wav", "pcm_s16le")
    return folder


def stored_calls_are_complete(store_path: Path) -> int:
    """Every call in the store is whole (its result and every table agree); returns how many there are."""
    db = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    calls = db.execute("SELECT call_id, turns, flags, result FROM calls").fetchall()
    for call_id, turns, flag_count, raw in calls:
        result = CallResult.from_dict(json.loads(raw))
        assert result.call_id == call_id
        assert db.execute("SELECT count(*) FROM turns WHERE call_id = ?", (call_id,)).fetchone()[0] == turns \
            == len(result.turns)
        assert db.execute("SELECT count(*) FROM flags WHERE call_id = ?", (call_id,)).fetchone()[0] == flag_count
        assert db.execute("SELECT count(*) FROM timelines WHERE call_id = ?", (call_id,)).fetchone()[0] \
            == len(result.timelines.t)
        assert db.execute("SELECT count(*) FROM speakers WHERE call_id = ?", (call_id,)).fetchone()[0] \
            == len(result.speakers)
    db.close()
    return len(calls)


@pytest.fixture(scope="module")
def killed_and_resumed(clips, tmp_path_factory) -> dict:
    """A 20-call batch on two workers killed with SIGKILL once some calls are stored, then run again."""
    out = tmp_path_factory.mktemp("batch")
    store_path = out / "analyzer.sqlite"
    command = [sys.executable, "-m", "analyzer.cli", "analyze", str(clips), "--out", str(out), "--workers", "2",
               "-q"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 600
    stored = 0
    while stored < 5 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
        if store_path.is_file():
            try:
                with sqlite3.connect(f"file:{store_path}?mode=ro", uri=True) as db:
                    stored = db.execute("SELECT count(*) FROM calls").fetchone()[0]
            except sqlite3.OperationalError:  # the store is being made
                stored = 0
    assert process.poll() is None, process.communicate()[1].decode()[-2000:]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(1)
    os.killpg(process.pid, signal.SIGKILL)  # its workers, which would exit on their own once they see it gone
    after_kill = stored_calls_are_complete(store_path)
    files_after_kill = sorted(p.name for p in out.glob("clip_*.json"))
    rerun = analyzer(*command[3:])
    return {"out": out, "store": store_path, "after_kill": after_kill, "files_after_kill": files_after_kill,
            "rerun": rerun}


def test_a_killed_batch_resumes_to_exactly_every_call_once(killed_and_resumed):
    state = killed_and_resumed
    assert 5 <= state["after_kill"] < CLIPS
    assert state["rerun"].returncode == 0, state["rerun"].stderr[-3000:]
    assert stored_calls_are_complete(state["store"]) == CLIPS
    summary = json.loads((state["out"] / "summary.json").read_text())
    assert summary["skipped_up_to_date"] >= state["after_kill"]
    assert summary["analyzed"] + summary["skipped_up_to_date"] == CLIPS and summary["failed"] == 0
    assert sorted(p.name for p in state["out"].glob("clip_*.json")) == [f"clip_{n:02d}.json" for n in range(CLIPS)]
    assert not list(state["out"].glob(".*.partial"))
    with Store(state["store"], readonly=True) as store:
        runs = list(store.rows("runs"))
        assert [r["finished_at"] is None for r in runs] == [True, False]  # the killed run never finished
        assert runs[1]["analyzed"] == CLIPS - runs[1]["skipped"] and runs[1]["workers"] == 2
        assert json.loads(runs[1]["models"])["asr"]["sha256"]


def test_a_rerun_skips_everything_and_a_changed_rulebook_reanalyses(killed_and_resumed, clips, tmp_path):
    out = killed_and_resumed["out"]
    (out / "clip_03.json").unlink()  # a result file removed by hand comes back from the store
    again = analyzer("analyze", str(clips), "--out", str(out), "--workers", "1", "-q")
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["skipped_up_to_date"] == CLIPS
    assert CallResult.load(out / "clip_03.json").call_id == "clip_03"
    last_run = (out / "analyzer.log").read_text(encoding="utf-8").rsplit("starting:", 1)[1]
    assert "loading the models" not in last_run  # nothing to do: no worker loads a model

    rules = tmp_path / "rules.yaml"
    rules.write_text("extends: default\nversion: site-2\ndisable: [insult.abuse]\n", encoding="utf-8")
    one = tmp_path / "one"
    one.mkdir()
    (one / "clip_05.wav").write_bytes((clips / "clip_05.wav").read_bytes())
    changed = analyzer("analyze", str(one), "--out", str(out), "--rules", str(rules), "--workers", "1", "-q")
    assert changed.returncode == 0, changed.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text())["analyzed"] == 1
    assert stored_calls_are_complete(killed_and_resumed["store"]) == CLIPS  # replaced, not added
    result = CallResult.load(out / "clip_05.json")
    assert result.provenance.models["rulebook"]["version"] == "site-2"


def test_the_same_audio_twice_is_analysed_once(clips, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.wav", "b.wav"):
        (folder / name).write_bytes((clips / "clip_01.wav").read_bytes())
    run = analyzer("analyze", str(folder), "--out", str(tmp_path / "out"), "--workers", "1", "-q")
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary["analyzed"], summary["skipped_up_to_date"]) == (1, 1)


def test_manifest_metadata_and_call_counts_across_runs(clips, tmp_path):
    out = tmp_path / "out"
    manifest = tmp_path / "calls.csv"
    manifest.write_text(
        "path,call_id,collector_id,borrower_id,started_at,direction,product\n"
        f"{clips / 'clip_00.wav'},c1,C9,B1,2026-11-20T09:00:00,outbound,现金贷\n"
        f"{clips / 'clip_01.wav'},c2,C9,B1,2026-11-20T10:00:00,outbound,现金贷\n", encoding="utf-8")
    assert analyzer("analyze", "--manifest", str(manifest), "--out", str(out), "-q").returncode == 0
    later = tmp_path / "later.csv"
    later.write_text("path,call_id,collector_id,borrower_id,started_at,direction\n"
                     f"{clips / 'clip_02.wav'},c3,C9,B1,2026-11-20T15:00:00,outbound\n", encoding="utf-8")
    assert analyzer("analyze", "--manifest", str(later), "--out", str(out), "-q").returncode == 0
    with Store(out / "analyzer.sqlite", readonly=True) as store:
        calls = {row["call_id"]: row for row in store.rows("calls")}
    assert calls["c1"]["collector_id"] == "C9" and calls["c1"]["started_at"] == "2026-11-20T09:00:00"
    assert json.loads(calls["c1"]["metadata"])["product"] == "现金贷"
    # the third call to B1 that day is counted with the two already in the store
    assert json.loads(calls["c3"]["metadata"])["calls_to_borrower_that_day"] == 3


def test_the_ray_engine_gives_the_local_engines_results(killed_and_resumed, clips, tmp_path):
    pytest.importorskip("ray")
    folder = tmp_path / "in"
    folder.mkdir()
    for n in (0, 1, 6):
        (folder / f"clip_{n:02d}.wav").write_bytes((clips / f"clip_{n:02d}.wav").read_bytes())
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00")
    out = tmp_path / "out"
    run = analyzer("analyze", str(folder), "--out", str(out), "--engine", "ray", "--workers", "2", "-q")
    assert run.returncode == 1, run.stderr[-3000:]
    assert "broken.wav" in run.stderr
    assert stored_calls_are_complete(out / "analyzer.sqlite") == 3
    for n in (0, 1, 6):
        on_ray = CallResult.load(out / f"clip_{n:02d}.json")
        local = CallResult.load(killed_and_resumed["out"] / f"clip_{n:02d}.json")
        assert [(t.speaker, t.text) for t in on_ray.turns] == [(t.speaker, t.text) for t in local.turns]
        assert on_ray.source.path == str(folder / f"clip_{n:02d}.wav")
    with Store(out / "analyzer.sqlite", readonly=True) as store:
        assert [r["engine"] for r in store.rows("runs")] == ["ray"]
        assert [r["path"] for r in store.rows("failures")] == [str(folder / "broken.wav")]


# --- exports --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(killed_and_resumed, tmp_path_factory) -> dict[str, Path]:
    full, research = tmp_path_factory.mktemp("export"), tmp_path_factory.mktemp("research")
    store = str(killed_and_resumed["store"])
    assert analyzer("export", store, "--out", str(full)).returncode == 0
    made = analyzer("export", store, "--out", str(research), "--deidentify", "--salt", "s3cret")
    assert made.returncode == 0, made.stderr
    return {"full": full, "research": research, "store": killed_and_resumed["store"]}


def test_exports_open_in_pandas_and_polars(exported):
    full = exported["full"]
    with Store(exported["store"], readonly=True) as store:
        counts = {table: store.count(table) for table in ("calls", "turns", "flags", "timelines", "metrics")}
    for table, count in counts.items():
        from_csv, from_parquet = pd.read_csv(full / f"{table}.csv"), pd.read_parquet(full / f"{table}.parquet")
        assert len(from_csv) == len(from_parquet) == pl.read_parquet(full / f"{table}.parquet").height == count
        assert len(pl.read_csv(full / f"{table}.csv")) == count
    timelines = pd.read_parquet(full / "timelines.parquet")
    assert {"collector_pressure", "borrower_stress", "collector_angry", "borrower_sad"} <= set(timelines.columns)
    turns = pd.read_parquet(full / "turns.parquet")
    assert turns["text"].str.len().sum() > 0 and turns["start_s"].dtype == np.float64


def test_the_deidentified_export_has_no_text_paths_or_ids(exported):
    research = exported["research"]
    with Store(exported["store"], readonly=True) as store:
        said = [row["text"] for row in store.rows("turns")] + [row["evidence"] for row in store.rows("flags")]
        ids = [row["call_id"] for row in store.rows("calls")]
    assert not list(research.glob("failures.*")) and not list(research.glob("runs.*"))
    phrases = {chunk for text in said for chunk in re.findall(r"[\u4e00-\u9fff]{4,}", text)}
    assert phrases
    for path in research.glob("*.csv"):
        content = path.read_text(encoding="utf-8")
        assert not re.search(r"[\u4e00-\u9fff]", content), path  # no Chinese at all: nothing that was said
        assert "clip_" not in content and "/" not in content, path  # no call ids, no paths
    calls = pd.read_parquet(research / "calls.parquet")
    assert sorted(calls["call_id"]) == sorted(pseudonym(i, "s3cret") for i in ids)
    assert "path" not in calls.columns and "audio_sha256" not in calls.columns
    turns = pd.read_parquet(research / "turns.parquet")
    assert "text" not in turns.columns and {"emotion", "pressure", "stress"} <= set(turns.columns)


@pytest.mark.parametrize("said, label", [
    ("我的手机号是13812345678，你打这个", "电话"),
    ("打 138-1234-5678 找我", "电话"),
    ("你打 +86 139 1234 5678 吧", "电话"),
    ("单位座机 010-62345678", "电话"),
    ("身份证号320102198503124418没错", "身份证号"),
    ("身份证 11010519491231002X", "身份证号"),
    ("卡号6222 0212 3456 7890 123", "银行卡号"),
    ("银行卡6217002710000684874", "银行卡号"),
    ("他的身份证号是三二零一零二一九八五零三一二四四一八", "号码"),
    ("电话幺三八一二三四五六七八", "号码"),
    ("我住在北京市朝阳区建国路88号", "地址"),
    ("家在幸福小区3栋2单元501室", "地址"),
    ("地址是广东省深圳市南山区", "地址"),
])
def test_redaction_removes_each_kind_of_personal_data(said, label):
    redacted = redact(said)
    assert f"[{label}]" in redacted, redacted
    assert not re.search(r"\d{4}", redacted) and not re.search(r"[一二三四五六七八九零幺]{5}", redacted), redacted
    for place in ("朝阳区", "建国路", "幸福小区", "南山区"):
        assert place not in redacted


@pytest.mark.parametrize("said", ["你欠了八千六百块，下午五点之前还", "逾期三个月了", "去超市买东西", "我在市区上班",
                                  "还款金额是1200元"])
def test_redaction_keeps_ordinary_speech(said):
    assert redact(said) == said


def test_a_machine_of_another_make_does_not_make_a_call_new():
    def described(gemm, beam):
        return {"models": {"asr": {"name": "whisper-base", "cpu_int8_gemm": gemm}}, "params": {"beam_size": beam}}

    assert batch.fingerprint(described("MKL", 5), {}) == batch.fingerprint(described("oneDNN", 5), {})
    assert batch.fingerprint(described("MKL", 5), {}) != batch.fingerprint(described("MKL", 1), {})
