"""Review app page times on a store of 1,000 calls, and (with --screenshots) the app's pages on the samples.

The store is filled with copies of the samples' results under new ids, collectors, start times and flag
decisions; the app runs as `analyzer serve` in its own process and each page is fetched over HTTP.

    python benchmarks/web.py [--calls 1000] [--requests 30] [--screenshots docs/web]
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import SAMPLE_IDS, SAMPLES  # noqa: E402
from test_web import CHROMIUM, Server  # noqa: E402

from analyzer import Config, analyze, load_models  # noqa: E402
from analyzer.store import Store  # noqa: E402

COLLECTORS = [f"C{n:03d}" for n in range(40)]


def sample_results() -> list:
    config = Config()
    models = load_models(config)
    return [analyze(SAMPLES / f"{call_id}.wav", config, models) for call_id in SAMPLE_IDS]


def fill(store_path: Path, results: list, calls: int) -> None:
    """`calls` calls made from the samples' results; about a third of their flags decided."""
    chance = random.Random(0)
    with Store(store_path) as store:
        for n in range(calls):
            result = copy.deepcopy(results[n % len(results)])
            result.call_id = f"call_{n:05d}"
            result.source.sha256 = f"{n:064x}"
            result.metadata = {"collector_id": chance.choice(COLLECTORS), "borrower_id": f"B{chance.randrange(600):04d}",
                               "started_at": f"2026-11-{chance.randrange(1, 29):02d}T{chance.randrange(8, 21):02d}:00:00",
                               "direction": "outbound"}
            result.risk = round(min(1.0, result.risk * chance.uniform(0.6, 1.0)), 3)
            store.save(result, "benchmark", None)
            for index in range(len(result.flags)):
                if chance.random() < 0.3:
                    store.record_review(result.call_id, index, chance.choice(["confirmed", "dismissed"]), "",
                                        "benchmark")


def timed(url: str, requests: int) -> tuple[float, float]:
    """Median and 95th percentile milliseconds of a whole GET, after one warm-up."""
    with httpx.Client(timeout=30) as client:
        assert client.get(url).status_code == 200, url
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            response = client.get(url)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
    return statistics.median(times), statistics.quantiles(times, n=20)[-1]


def screenshots(store_path: Path, folder: Path) -> None:
    from playwright.sync_api import sync_playwright

    folder.mkdir(parents=True, exist_ok=True)
    server = Server(store_path).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(server.url + "/")
            page.screenshot(path=folder / "queue.png", full_page=True)
            page.goto(server.url + "/calls/call_02_abusive")
            page.wait_for_function("document.getElementById('player').readyState >= 1")
            page.locator("#marker-3").click()  # the arrest-and-jail threat: the playhead moves there
            page.fill("#reviewer", "审核员 Li")
            page.locator("#flag-3 input[name=note]").fill("确认：威胁坐牢")
            page.locator("#flag-3 button[value=confirmed]").click()
            page.locator("#flag-3 .decision").filter(has_text="confirmed").wait_for()
            page.screenshot(path=folder / "call.png", full_page=True)
            browser.close()
    finally:
        server.stop()
    print(f"screenshots in {folder}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--screenshots", type=Path, help="also save the pages on the samples into this folder")
    args = parser.parse_args()
    results = sample_results()
    with tempfile.TemporaryDirectory() as folder:
        if args.screenshots:
            samples_store = Path(folder) / "samples.sqlite"
            with Store(samples_store) as store:
                for n, result in enumerate(results):  # with what a manifest would say of them
                    shown = copy.deepcopy(result)
                    shown.metadata = {"collector_id": COLLECTORS[n % 2], "borrower_id": f"B{n + 1:04d}",
                                      "started_at": f"2026-11-20T{10 + n:02d}:15:00", "direction": "outbound"}
                    store.save(shown, "benchmark", None)
            screenshots(samples_store, args.screenshots)
        store_path = Path(folder) / "analyzer.sqlite"
        fill(store_path, results, args.calls)
        server = Server(store_path).start()
        try:
            pages = {
                "queue, first page": "/",
                "queue, page 10": "/?page=10",
                "queue, category threat": "/?category=threat",
                "queue, collector + status": f"/?collector={COLLECTORS[3]}&status=to+review",
                "queue, one date": "/?date=2026-11-15",
                "call page (abusive, 5 flags)": "/calls/call_00001",
                "call page (compliant)": "/calls/call_00000",
            }
            print(f"store of {args.calls} calls; {args.requests} requests a page over HTTP\n")
            print("| page | median ms | p95 ms |")
            print("|---|---|---|")
            for name, path in pages.items():
                median, p95 = timed(server.url + path, args.requests)
                print(f"| {name} | {median:.0f} | {p95:.0f} |", flush=True)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
