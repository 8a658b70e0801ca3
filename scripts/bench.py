#!/usr/bin/env python3
"""`make bench`: how close greenhouse-extract gets to the Harvest v3 rate limit, and what it costs.

Greenhouse gives each credential a fixed number of requests per 30-second window and at most 500
records per page, so a full sync cannot finish faster than

    ideal wall time = minimum pages / (limit / window)

This script runs the release binaries against the bundled simulator and reports, in one table
(also written to target/bench/results.json):

  rate-limited   a full sync at scale >= 20 under the default 75 / 30 s limit with realistic
                 latency: requests vs the minimum possible pages, budget utilisation per window,
                 429s, wall time vs ideal;
  unthrottled    a full sync with no limit and no latency: records/s, JSON and Parquet MB/s and
                 the extractor's CPU per 100 k records; the candidates stream alone as records
                 per CPU-second of the extractor ("on one core");
  memory         the extractor's peak RSS for full syncs at scale 10 and scale 50;
  current tables what the current-state Delta tables add: after the rate-limited full sync, one
                 mutation read by an incremental sync of that destination (tables on) and of a
                 copy with `tables = "raw"`, then a run with no change, under the same limit;
                 and unthrottled at scale 20: full syncs, 3 × mutate → incremental, no change,
                 raw vs current, with the bytes rewritten per changed row;
  windows        the budget against other window lengths at the same 3 requests/s: 5 s, 10 s and
                 30 s windows (15, 30 and 90 requests) × 300 ms and 1000 ms latency, plus the 5 s
                 windows with `X-RateLimit-Reset` left out (the window's end must then be learnt
                 from Retry-After): wall ÷ ideal, requests ÷ minimum, 429s after the first window;
  peers          computed, not measured: the wall time a client held to Airbyte's documented
                 budget (50 requests per 30 s, 2 threads) needs for the same minimum pages.

It reads only documented outputs: the run manifest (_runs/<run_id>/manifest.json), the exit code,
the simulator's control API (/_sim/count, /_sim/stats) and the extractor's rusage from wait4.
A benchmark reports; it never fails because a target was missed (only when a run fails).

Python 3.11+ standard library only.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import glob
import json
import math
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_PER_PAGE = 500  # Harvest v3's ceiling for per_page
AIRBYTE_LIMIT = 50  # Airbyte's declared budget: 50 requests per 30 s across all threads
AIRBYTE_WINDOW = 30
AIRBYTE_THREADS = 2


class BenchError(Exception):
    """A run that cannot be measured (a sync failed, the simulator did not start, …)."""


# ------------------------------------------------------------------------------------ processes

_live: list[subprocess.Popen] = []


def _cleanup() -> None:
    # Children first get SIGTERM (the simulator and the extractor both shut down cleanly on it),
    # then SIGKILL if they linger, so an interrupted benchmark leaves nothing listening.
    for p in list(_live):
        if p.poll() is None:
            try:
                p.terminate()
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            except ProcessLookupError:
                pass
        if p in _live:
            _live.remove(p)


def _on_sigterm(_signum, _frame):
    raise KeyboardInterrupt


atexit.register(_cleanup)


def child_env(base_url: str | None) -> dict[str, str]:
    # Like the test harness: no GREENHOUSE_*/AWS_* from the host leaks into a measured run.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GREENHOUSE_", "AWS_"))}
    if base_url:
        env.update(
            GREENHOUSE_API_URL=base_url,
            GREENHOUSE_TOKEN_URL=f"{base_url}/token",
            GREENHOUSE_CLIENT_ID="sim-client",
            GREENHOUSE_CLIENT_SECRET="sim-secret",
        )
    return env


class Sim:
    """A harvest-sim process on a free port (it prints its base URL as the first stdout line)."""

    def __init__(self, binary: Path, workdir: Path, args: list[str]):
        self.args = ["--port", "0", *args]
        self.stderr_path = workdir / f"sim-{len(os.listdir(workdir))}.err"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [str(binary), *self.args],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=child_env(None),
        )
        _live.append(self.proc)
        lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(
            target=lambda: lines.put(self.proc.stdout.readline()), daemon=True
        ).start()
        try:
            first = lines.get(timeout=60).decode().strip()
        except queue.Empty:
            first = ""
        if not first.startswith("http://127.0.0.1:"):
            self.stop()
            raise BenchError(
                f"harvest-sim {' '.join(args)} did not print its URL "
                f"(first line {first!r}); stderr:\n{tail(self.stderr_path)}"
            )
        self.url = first

    def get(self, path: str) -> dict:
        try:
            with urllib.request.urlopen(self.url + path, timeout=120) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise BenchError(f"GET {path}: {e.code} {e.read().decode(errors='replace')}") from e

    def post(self, path: str) -> dict:
        req = urllib.request.Request(self.url + path, method="POST", data=b"")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            raise BenchError(f"POST {path}: {e.code} {e.read().decode(errors='replace')}") from e

    def count(self, resource: str, params: dict[str, str]) -> int:
        q = urllib.parse.urlencode(params)
        return int(self.get(f"/_sim/count/{resource}" + (f"?{q}" if q else ""))["count"])

    def stats(self) -> dict:
        return self.get("/_sim/stats")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc in _live:
            _live.remove(self.proc)
        self._stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def tail(path: Path, n: int = 30) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no output)"
    return "\n".join(lines[-n:]) or "(empty)"


def run_sync(extract: Path, sim: Sim, dest: str, workdir: Path, label: str, streams=None,
             config: Path | None = None) -> dict:
    """Runs one `greenhouse-extract sync` and measures it (wall clock, rusage, its manifest)."""
    args = [str(extract), "sync", "--destination", dest, "--log-format", "json"]
    if config:
        args += ["--config", str(config)]
    if streams:
        args += ["--streams", ",".join(streams)]
    local = dest.removeprefix("file://")
    pattern = os.path.join(local, "_runs", "*", "manifest.json")
    before = set(glob.glob(pattern))
    out_path, err_path = workdir / f"{label}.out", workdir / f"{label}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.monotonic()
        started = time.time()
        proc = subprocess.Popen(args, stdout=out, stderr=err, env=child_env(sim.url))
        _live.append(proc)
        # wait4 gives this child's own rusage (CPU and peak RSS), not the simulator's.
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        _live.remove(proc)
    if proc.returncode != 0:
        raise BenchError(
            f"{label}: greenhouse-extract sync exited with {proc.returncode}; stderr tail "
            f"({err_path}):\n{tail(err_path)}"
        )
    manifests = sorted(set(glob.glob(pattern)) - before)
    if len(manifests) != 1:
        raise BenchError(f"{label}: expected one new run manifest under {local}/_runs, found {manifests}")
    with open(manifests[0]) as f:
        manifest = json.load(f)
    streams_m = manifest.get("streams", {})
    return {
        "label": label,
        "started_epoch": started,
        "wall_s": wall,
        "exit_code": proc.returncode,
        "cpu_user_s": ru.ru_utime,
        "cpu_sys_s": ru.ru_stime,
        "cpu_s": ru.ru_utime + ru.ru_stime,
        "peak_rss_mb": ru.ru_maxrss / 1024,  # Linux reports ru_maxrss in KiB
        "manifest_status": manifest.get("status"),
        "streams": len(streams_m),
        "rows": sum(s.get("rows", 0) for s in streams_m.values()),
        "requests": sum(s.get("requests", 0) for s in streams_m.values()),
        "parquet_bytes": sum(f.get("bytes", 0) for s in streams_m.values() for f in s.get("files", [])),
        "parquet_files": sum(len(s.get("files", [])) for s in streams_m.values()),
        # What the current-state tables did (absent with tables = "raw").
        "current": {
            k: sum((s.get("current") or {}).get(k, 0) for s in streams_m.values())
            for k in ("commits", "upserted", "deleted", "changed", "files_removed", "files_added",
                      "bytes_read", "rows_read", "bytes_written", "merge_ms")
        },
    }


# ------------------------------------------------------------------------------ declarations


def declarations(include_sensitive: bool = False) -> list[dict]:
    """The stream declarations a default sync reads (every non-sensitive stream)."""
    out = []
    for path in sorted((ROOT / "streams").glob("*.toml")):
        with open(path, "rb") as f:
            d = tomllib.load(f)
        if d.get("sensitive", False) and not include_sensitive:
            continue
        out.append(d)
    return out


def minimum_pages(sim: Sim, streams: list[dict]) -> dict:
    """Fewest requests any client needs: per stream and declared partition, max(1, ceil(n/500)).

    The first run reads each incremental stream up to a signpost a few seconds before now; the
    simulator's data is dated 2023-01-01 .. 2026-06-30 and nothing is mutated during the
    benchmark, so the unfiltered count is the count of that window.
    """
    per_stream = {}
    for d in streams:
        params = {k: str(v) for k, v in d.get("params", {}).items()}
        parts = d.get("partitions") or [{}]
        rows = pages = 0
        detail = []
        for part in parts:
            q = {**params, **{k: str(v) for k, v in part.items()}}
            n = sim.count(d["resource"], q)
            p = max(1, math.ceil(n / MAX_PER_PAGE))
            rows += n
            pages += p
            detail.append({"params": q, "rows": n, "pages": p})
        per_stream[d["name"]] = {"resource": d["resource"], "rows": rows, "pages": pages, "partitions": detail}
    return {
        "pages": sum(s["pages"] for s in per_stream.values()),
        "rows": sum(s["rows"] for s in per_stream.values()),
        "streams": per_stream,
    }


# --------------------------------------------------------------------------------- sections


def wait_for_window_start(window: int) -> float:
    """Sleeps until just after the next epoch-aligned window opens; returns the seconds slept.

    Starting mid-window would hand the run a short first window whose whole budget cannot be
    spent at 300 ms per request, which would blur both utilisation and wall ÷ ideal.
    """
    now = time.time()
    wait = (window - now % window) % window + 0.05
    time.sleep(wait)
    return wait


def rate_limited_section(a, bins, workdir: Path) -> dict:
    sim_args = [
        "--scale", str(a.scale), "--rate-limit", str(a.rate_limit), "--rate-window", str(a.rate_window),
        "--latency-ms", str(a.latency_ms), "--per-record-us", str(a.per_record_us),
    ]
    with Sim(bins["sim"], workdir, sim_args) as sim:
        mins = minimum_pages(sim, declarations())
        waited = wait_for_window_start(a.rate_window) if a.align else 0.0
        dest = workdir / "rate-limited"
        run = run_sync(bins["extract"], sim, str(dest), workdir, "rate-limited")
        st = sim.stats()
        # What the current tables add to an incremental run under the same limit and latency:
        # the full sync's destination (current tables on, the default) and a copy of it that
        # goes on with `tables = "raw"` each read the same mutation, each starting just after
        # a window opens.
        incremental = None
        if not a.skip_current_tables:
            incremental = rate_limited_incremental(a, bins, workdir, sim, dest)
    limit, window = st["rate_limit"], st["rate_window"]
    pages_ok = sum(by.get("200", 0) for by in st["by_resource"].values())
    total = st["total_requests"]
    rate_limited = st["rate_limited"]
    other = total - pages_ok - rate_limited

    # Every window from the first request's to the last request's, gaps filled with zeros (a
    # window in which the client sent nothing wasted its whole budget).
    by_start = {w["start"]: w for w in st["windows"]}
    windows = []
    if by_start:
        first, last = min(by_start), max(by_start)
        for s in range(first, last + window, window):
            w = by_start.get(s, {"start": s, "requests": 0, "ok": 0, "rate_limited": 0})
            windows.append({**w, "used": w["requests"] - w["rate_limited"]})
    # The last window is excluded: the run ends in it when the work runs out, not the budget.
    # The first is kept because the run is started right after a window opens (see --no-align);
    # without alignment it is excluded too, as it is only partly inside the run.
    full = windows[:-1] if a.align else windows[1:-1]
    used = [w["used"] for w in full]
    util = sum(used) / (limit * len(full)) if full and limit else None
    after_first = sum(w["rate_limited"] for w in windows[1:])
    ideal = mins["pages"] / (limit / window)
    return {
        "sim_args": sim_args,
        "aligned_start_wait_s": round(waited, 3),
        "minimum": mins,
        "run": run,
        "requests_manifest": run["requests"],
        "requests_sim": total,
        "pages_200": pages_ok,
        "rate_limited_429": rate_limited,
        "other_status": other,
        "min_pages": mins["pages"],
        "requests_over_min": total / mins["pages"],
        "overhead_requests": total - mins["pages"],
        "rate_limit": limit,
        "rate_window_s": window,
        "windows": windows,
        "utilisation_windows": len(full),
        "utilisation_excluded": "the last window, where the run ends"
        + ("" if a.align else ", and the first, where it starts mid-window"),
        "utilisation": util,
        "min_window_utilisation": (min(used) / limit) if used else None,
        "rate_limited_after_first_window": after_first,
        "wall_s": run["wall_s"],
        "ideal_wall_s": ideal,
        "wall_over_ideal": run["wall_s"] / ideal,
        "incremental": incremental,
    }


def rate_limited_incremental(a, bins, workdir: Path, sim: Sim, dest: Path) -> dict:
    raw_dest = workdir / "rate-limited-raw"
    shutil.copytree(dest, raw_dest)
    cfgs = {}
    for mode in ("raw", "current"):
        cfgs[mode] = workdir / f"rl-tables-{mode}.toml"
        cfgs[mode].write_text(f'tables = "{mode}"\n')
    dests = {"raw": str(raw_dest), "current": str(dest)}
    sim.post(f"/_sim/mutate?{a.current_mutation}&seed=7")
    out = {"mutation": a.current_mutation}
    for label in ("incremental", "no_change"):
        runs = {}
        for mode in ("raw", "current"):
            if a.align:
                wait_for_window_start(a.rate_window)
            runs[mode] = run_sync(bins["extract"], sim, dests[mode], workdir, f"rl-{label}-{mode}", config=cfgs[mode])
        raw, cur = runs["raw"]["wall_s"], runs["current"]["wall_s"]
        runs["added_s"] = cur - raw
        runs["share"] = (cur - raw) / cur if cur else 0.0
        out[label] = runs
    return out


WINDOW_CASES = [
    # (window s, requests per window, latency ms, rate headers left out)
    (5, 15, 300, None), (5, 15, 1000, None),
    (10, 30, 300, None), (10, 30, 1000, None),
    (30, 90, 300, None), (30, 90, 1000, None),
    (5, 15, 300, "reset"), (5, 15, 1000, "reset"),
]


def windows_section(a, bins, workdir: Path) -> dict:
    """Full syncs at `a.windows_scale` under each of WINDOW_CASES, each started as a window opens."""
    runs = []
    for window, limit, latency, omit in WINDOW_CASES:
        label = f"w{window}-{latency}ms" + (f"-no-{omit}" if omit else "")
        sim_args = [
            "--scale", str(a.windows_scale), "--rate-limit", str(limit), "--rate-window", str(window),
            "--latency-ms", str(latency), "--per-record-us", str(a.per_record_us),
        ]
        if omit:
            sim_args += ["--omit-rate-headers", omit]
        print(f"bench:   {label}…", file=sys.stderr, flush=True)
        with Sim(bins["sim"], workdir, sim_args) as sim:
            mins = minimum_pages(sim, declarations())
            wait_for_window_start(window)
            run = run_sync(bins["extract"], sim, str(workdir / label), workdir, label)
            st = sim.stats()
        by_start = sorted(st["windows"], key=lambda w: w["start"])
        first = by_start[0]["start"] if by_start else 0
        ideal = mins["pages"] / (limit / window)
        runs.append({
            "label": label,
            "window_s": window,
            "limit": limit,
            "latency_ms": latency,
            "omitted_header": omit,
            "min_pages": mins["pages"],
            "requests": st["total_requests"],
            "requests_over_min": st["total_requests"] / mins["pages"],
            "rate_limited_429": st["rate_limited"],
            "rate_limited_after_first_window": sum(w["rate_limited"] for w in by_start if w["start"] > first),
            "windows_with_429": sorted({(w["start"] - first) // window for w in by_start if w["rate_limited"]}),
            "wall_s": run["wall_s"],
            "ideal_wall_s": ideal,
            "wall_over_ideal": run["wall_s"] / ideal,
            "cpu_s": run["cpu_s"],
        })
    return {"scale": a.windows_scale, "per_record_us": a.per_record_us, "runs": runs}


def peers_section(rl: dict, a) -> dict:
    """Computed, not measured: the same minimum pages at Airbyte's budget with 2 threads."""
    mins = rl["minimum"]
    budget_bound = mins["pages"] / (AIRBYTE_LIMIT / AIRBYTE_WINDOW)
    # The simulator answers each page after latency_ms + per_record_us × records; two threads
    # overlap two pages at a time. The slower of the two bounds decides.
    service_s = (mins["pages"] * a.latency_ms / 1e3) + (mins["rows"] * a.per_record_us / 1e6)
    thread_bound = service_s / AIRBYTE_THREADS
    wall = max(budget_bound, thread_bound)
    return {
        "computed": True,
        "model": f"{AIRBYTE_LIMIT} requests per {AIRBYTE_WINDOW} s, {AIRBYTE_THREADS} threads, "
        f"{a.latency_ms} ms + {a.per_record_us} µs/record per page, same minimum pages",
        "budget_bound_s": budget_bound,
        "thread_bound_s": thread_bound,
        "airbyte_wall_s": wall,
        "ours_over_airbyte": rl["wall_s"] / wall,
    }


def unthrottled_run(a, bins, workdir: Path, scale: float, label: str, streams=None) -> dict:
    with Sim(bins["sim"], workdir, ["--scale", str(scale), "--rate-limit", "0"]) as sim:
        dest = "file://" + str(workdir / label)
        run = run_sync(bins["extract"], sim, dest, workdir, label, streams)
        st = sim.stats()
    wall, rows = run["wall_s"], run["rows"]
    return {
        "scale": scale,
        "streams": streams or "all non-sensitive",
        "run": run,
        "records": rows,
        "json_bytes": st["bytes_served"],
        "records_per_s": rows / wall,
        "json_mb_per_s": st["bytes_served"] / wall / 1e6,
        "parquet_mb_per_s": run["parquet_bytes"] / wall / 1e6,
        "cpu_s": run["cpu_s"],
        "cpu_s_per_100k": run["cpu_s"] / rows * 1e5 if rows else None,
        "records_per_cpu_s": rows / run["cpu_s"] if run["cpu_s"] else None,
        "peak_rss_mb": run["peak_rss_mb"],
        "requests_sim": st["total_requests"],
    }


# ------------------------------------------------------------------------------ current tables


def current_tables_section(a, bins, workdir: Path) -> dict:
    """What the current-state tables add: against one unthrottled simulator, a full sync, then
    `rounds` times (mutate → an incremental sync), then a sync with no change, each run once
    with `tables = "raw"` and once with `tables = "current"` (alternating which goes first).
    Both destinations see the same data; the difference in wall time is the tables' cost, and
    the manifests say what the merges read and rewrote."""
    scale = a.current_scale
    cfgs, dests = {}, {}
    for mode in ("raw", "current"):
        cfgs[mode] = workdir / f"tables-{mode}.toml"
        cfgs[mode].write_text(f'tables = "{mode}"\n')
        dests[mode] = "file://" + str(workdir / f"tables-{mode}")

    def both(sim, label, first="raw"):
        order = [first, "current" if first == "raw" else "raw"]
        return {m: run_sync(bins["extract"], sim, dests[m], workdir, f"tables-{m}-{label}", config=cfgs[m])
                for m in order}

    out = {"scale": scale, "mutation": a.current_mutation, "rounds": []}
    with Sim(bins["sim"], workdir, ["--scale", str(scale), "--rate-limit", "0"]) as sim:
        out["full"] = both(sim, "full")
        for i in range(a.current_rounds):
            report = sim.post(f"/_sim/mutate?{a.current_mutation}&seed={100 + i}")
            runs = both(sim, f"incremental-{i}", first="raw" if i % 2 == 0 else "current")
            runs["mutated_rows"] = sum(
                len(v) for k in ("updated", "inserted", "deleted") for v in (report.get(k) or {}).values()
            )
            out["rounds"].append(runs)
        out["no_change"] = both(sim, "no-change")

    def added(runs):
        raw, cur = runs["raw"]["wall_s"], runs["current"]["wall_s"]
        return {"raw_s": raw, "current_s": cur, "added_s": cur - raw, "share": (cur - raw) / cur if cur else 0.0,
                "merge_s": runs["current"]["current"]["merge_ms"] / 1000,
                "merge_share": runs["current"]["current"]["merge_ms"] / 1000 / cur if cur else 0.0}

    out["full_added"] = added(out["full"])
    inc = [added(r) for r in out["rounds"]]
    out["incremental_added"] = inc
    mid = sorted(inc, key=lambda x: x["share"])[len(inc) // 2] if inc else None
    out["incremental_median"] = mid
    changed = sum(r["current"]["current"]["changed"] for r in out["rounds"])
    written = sum(r["current"]["current"]["bytes_written"] for r in out["rounds"])
    read = sum(r["current"]["current"]["bytes_read"] for r in out["rounds"])
    out["changed_rows"] = changed
    out["bytes_written"] = written
    out["bytes_read"] = read
    out["bytes_written_per_changed_row"] = written / changed if changed else None
    out["no_change_added"] = added(out["no_change"])
    return out


# ------------------------------------------------------------------------------------ report


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def fmt_s(s: float) -> str:
    return f"{s:.1f} s" if s < 120 else f"{s:.0f} s ({s / 60:.1f} min)"


def build_table(res: dict) -> list[dict]:
    rows = []

    def row(section, metric, value, target="", ok=None):
        rows.append({
            "section": section, "metric": metric, "value": value, "target": target,
            "result": "" if ok is None else ("pass" if ok else "miss"),
        })

    rl = res["sections"].get("rate_limited")
    if rl:
        s = f"rate-limited (scale {res['parameters']['scale']:g})"
        row(s, "requests (manifest / simulator)", f"{rl['requests_manifest']} / {rl['requests_sim']}")
        row(s, "pages (200) / 429s / other statuses", f"{rl['pages_200']} / {rl['rate_limited_429']} / {rl['other_status']}")
        row(s, "minimum possible pages", str(rl["min_pages"]))
        # The bound: at most 1 % more requests than the minimum.
        row(s, "requests ÷ minimum", f"{rl['requests_over_min']:.3f} (overhead {rl['overhead_requests']:+d} requests)",
            "≤ 1.01", rl["requests_over_min"] <= 1.01)
        u = rl["utilisation"]
        row(s, f"utilisation (used ÷ limit, {rl['utilisation_windows']} windows; "
               f"excludes {rl['utilisation_excluded']})",
            "n/a (run shorter than two windows)" if u is None
            else f"{u * 100:.1f} % (lowest window {rl['min_window_utilisation'] * 100:.0f} %)",
            "≥ 95 % and no 429 after window 1",
            None if u is None else (u >= 0.95 and rl["rate_limited_after_first_window"] == 0))
        row(s, "429s after the first window", str(rl["rate_limited_after_first_window"]), "0",
            rl["rate_limited_after_first_window"] == 0)
        row(s, "wall time", fmt_s(rl["wall_s"]))
        row(s, f"ideal wall time (min pages ÷ {rl['rate_limit']}/{rl['rate_window_s']} s)", fmt_s(rl["ideal_wall_s"]))
        row(s, "wall ÷ ideal", f"{rl['wall_over_ideal']:.3f}", "≤ 1.05", rl["wall_over_ideal"] <= 1.05)
        row(s, "extractor CPU / peak RSS", f"{rl['run']['cpu_s']:.1f} s / {rl['run']['peak_rss_mb']:.0f} MB")
        inc = rl.get("incremental")
        if inc:
            i, n = inc["incremental"], inc["no_change"]
            c = i["current"]["current"]
            row(s, f"incremental ({inc['mutation']}): raw / with current tables",
                f"{fmt_s(i['raw']['wall_s'])} / {fmt_s(i['current']['wall_s'])} "
                f"({c['changed']} ids changed, {c['bytes_written'] / 1e6:.1f} MB rewritten)")
            row(s, "current tables' share of the incremental wall time", f"{i['share'] * 100:.1f} %",
                "≤ 20 %", i["share"] <= 0.20)
            nc = n["current"]["current"]
            row(s, "no-change run: raw / current; bytes rewritten, commits",
                f"{fmt_s(n['raw']['wall_s'])} / {fmt_s(n['current']['wall_s'])}; "
                f"{nc['bytes_written']} B, {nc['commits']}", "0 B, 0", nc["bytes_written"] == 0 and nc["commits"] == 0)

    wi = res["sections"].get("windows")
    if wi:
        s = f"windows (scale {wi['scale']:g}, 3 requests/s)"
        for r in wi["runs"]:
            case = (f"{r['limit']}/{r['window_s']} s, {r['latency_ms']} ms"
                    + (f", no {r['omitted_header']} header" if r["omitted_header"] else ""))
            # Without a reset header the end of a window is learnt from the 429 of a probe:
            # one in each of the first two windows the run spends.
            allowed = 2 if r["omitted_header"] == "reset" else 0
            ok = (r["wall_over_ideal"] <= 1.05 and r["requests_over_min"] <= 1.01 + allowed / r["min_pages"]
                  and r["rate_limited_after_first_window"] <= max(0, allowed - 1))
            row(s, f"{case}: wall ÷ ideal; requests ÷ min; 429s (after window 1)",
                f"{fmt_s(r['wall_s'])} ÷ {fmt_s(r['ideal_wall_s'])} = {r['wall_over_ideal']:.3f}; "
                f"{r['requests']} ÷ {r['min_pages']} = {r['requests_over_min']:.3f}; "
                f"{r['rate_limited_429']} ({r['rate_limited_after_first_window']})",
                "≤ 1.05; ≤ 1.01; 0" + (" (≤ 1 learning)" if allowed else ""), ok)

    un = res["sections"].get("unthrottled")
    if un:
        a = un["all"]
        s = f"unthrottled (scale {a['scale']:g}, all streams)"
        row(s, "records / wall", f"{a['records']} / {a['run']['wall_s']:.2f} s")
        row(s, "records/s end to end", f"{a['records_per_s']:,.0f}")
        row(s, "JSON fetched", f"{a['json_bytes'] / 1e6:.1f} MB, {a['json_mb_per_s']:.1f} MB/s")
        row(s, "Parquet written", f"{a['run']['parquet_bytes'] / 1e6:.1f} MB, {a['parquet_mb_per_s']:.1f} MB/s")
        row(s, "extractor CPU per 100 k records", f"{a['cpu_s_per_100k']:.2f} s ({a['records_per_cpu_s']:,.0f} records/CPU-s)",
            "≥ 300,000 records/CPU-s", a["records_per_cpu_s"] >= 300_000)
        c = un["candidates"]
        s = f"unthrottled (scale {c['scale']:g}, candidates only)"
        row(s, "records / wall / records/s", f"{c['records']} / {c['run']['wall_s']:.2f} s / {c['records_per_s']:,.0f}")
        row(s, "JSON fetched", f"{c['json_bytes'] / 1e6:.1f} MB, {c['json_mb_per_s']:.1f} MB/s")
        row(s, "extractor CPU per 100 k records", f"{c['cpu_s_per_100k']:.2f} s")
        row(s, "records per extractor CPU-second (one core)", f"{c['records_per_cpu_s']:,.0f}",
            "≥ 150,000", c["records_per_cpu_s"] >= 150_000)

    mem = res["sections"].get("memory")
    if mem:
        lo, hi = mem["low"], mem["high"]
        s = "memory (unthrottled full sync)"
        for m in (lo, hi):
            row(s, f"peak RSS at scale {m['scale']:g} ({m['records']} records)", f"{m['peak_rss_mb']:.0f} MB",
                "≤ 150 MB", m["peak_rss_mb"] <= 150)
        row(s, f"scale {hi['scale']:g} ÷ scale {lo['scale']:g}", f"{mem['ratio']:.2f}×", "≤ 1.5×", mem["ratio"] <= 1.5)

    ct = res["sections"].get("current_tables")
    if ct:
        s = f"current tables (scale {ct['scale']:g}, unthrottled, raw vs current)"
        f = ct["full_added"]
        row(s, "full sync: raw / with current tables", f"{fmt_s(f['raw_s'])} / {fmt_s(f['current_s'])} "
               f"(+{f['share'] * 100:.0f} %, merges {f['merge_s']:.1f} s)")
        m = ct["incremental_median"]
        if m:
            row(s, f"incremental ({ct['mutation']}), median of {len(ct['rounds'])}: raw / current",
                f"{fmt_s(m['raw_s'])} / {fmt_s(m['current_s'])} (merges {m['merge_s']:.2f} s)")
            row(s, "current tables' share of the incremental wall time", f"{m['share'] * 100:.1f} %",
                "≤ 20 %", m["share"] <= 0.20)
        bpr = ct["bytes_written_per_changed_row"]
        row(s, "bytes rewritten per changed row",
            "n/a" if bpr is None else f"{bpr:,.0f} B ({ct['bytes_written'] / 1e6:.1f} MB for {ct['changed_rows']} rows; "
                                      f"read {ct['bytes_read'] / 1e6:.1f} MB)")
        n = ct["no_change"]["current"]["current"]
        row(s, "no-change run: bytes rewritten / commits", f"{n['bytes_written']} / {n['commits']}", "0 / 0",
            n["bytes_written"] == 0 and n["commits"] == 0)
        nc = ct["no_change_added"]
        row(s, "no-change run: raw / current", f"{fmt_s(nc['raw_s'])} / {fmt_s(nc['current_s'])}")

    pe = res["sections"].get("peers")
    if pe:
        s = "peers (COMPUTED, not measured)"
        row(s, f"Airbyte budget ({AIRBYTE_LIMIT}/{AIRBYTE_WINDOW} s, {AIRBYTE_THREADS} threads) for the same minimum pages",
            fmt_s(pe["airbyte_wall_s"]))
        row(s, "our measured wall ÷ that", f"{pe['ours_over_airbyte']:.2f}")
    return rows


def print_table(rows: list[dict], title: str) -> None:
    cols = ["section", "metric", "value", "target", "result"]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    line = "  ".join("-" * widths[c] for c in cols)
    print(title)
    print("  ".join(c.ljust(widths[c]) for c in cols))
    print(line)
    prev = None
    for r in rows:
        cells = dict(r)
        if r["section"] == prev:
            cells["section"] = ""
        prev = r["section"]
        print("  ".join(cells[c].ljust(widths[c]) for c in cols).rstrip())


# -------------------------------------------------------------------------------------- main


def parse_args(argv):
    env_scale = os.environ.get("BENCH_SCALE")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a few-minute trial: rate-limited at scale 2, unthrottled at scale 1, memory at scales 1 and 5")
    p.add_argument("--scale", type=float, default=None,
                   help="rate-limited run's scale (default 20, or $BENCH_SCALE; 2 with --quick)")
    p.add_argument("--rate-limit", type=int, default=75)
    p.add_argument("--rate-window", type=int, default=30)
    p.add_argument("--latency-ms", type=int, default=300)
    p.add_argument("--per-record-us", type=int, default=1000)
    p.add_argument("--unthrottled-scale", type=float, default=None, help="default 10 (1 with --quick)")
    p.add_argument("--candidates-scale", type=float, default=None,
                   help="scale of the candidates-only run (default 50, 5 with --quick): enough records "
                        "that start-up does not dominate the CPU per record")
    p.add_argument("--memory-scales", default=None, help="two scales, low,high (default 10,50, the issue's; 1,5 with --quick)")
    p.add_argument("--skip-rate-limited", action="store_true", help="skip the ~20-minute rate-limited run (and peers)")
    p.add_argument("--skip-unthrottled", action="store_true")
    p.add_argument("--skip-windows", action="store_true", help="skip the ~15-minute window-length runs")
    p.add_argument("--windows-scale", type=float, default=None, help="scale of the window-length runs (default 2; 0.5 with --quick)")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-current-tables", action="store_true")
    p.add_argument("--current-scale", type=float, default=None, help="default 20 (2 with --quick)")
    p.add_argument("--current-rounds", type=int, default=None, help="mutate → incremental rounds (default 3; 1 with --quick)")
    p.add_argument("--current-mutation", default="updates=50&inserts=20&deletes=5&merges=2",
                   help="the /_sim/mutate query of each round (per resource)")
    p.add_argument("--no-align", dest="align", action="store_false",
                   help="start the rate-limited run at once instead of just after a window opens")
    p.add_argument("--bin-dir", type=Path, default=ROOT / "target" / "release")
    p.add_argument("--out", type=Path, default=ROOT / "target" / "bench" / "results.json")
    a = p.parse_args(argv)
    if a.scale is None:
        a.scale = 2.0 if a.quick else float(env_scale) if env_scale else 20.0
    if a.windows_scale is None:
        a.windows_scale = 0.5 if a.quick else 2.0
    if a.unthrottled_scale is None:
        a.unthrottled_scale = 1.0 if a.quick else 10.0
    if a.candidates_scale is None:
        a.candidates_scale = 5.0 if a.quick else 50.0
    if a.current_scale is None:
        a.current_scale = 2.0 if a.quick else 20.0
    if a.current_rounds is None:
        a.current_rounds = 1 if a.quick else 3
    ms = a.memory_scales or ("1,5" if a.quick else "10,50")
    try:
        lo, hi = (float(x) for x in ms.split(","))
    except ValueError:
        p.error(f"--memory-scales wants two numbers like 1,50, not {ms!r}")
    a.memory_scales = (lo, hi)
    if a.rate_limit <= 0:
        p.error("--rate-limit must be positive for the rate-limited run")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    bins = {"sim": a.bin_dir / "harvest-sim", "extract": a.bin_dir / "greenhouse-extract"}
    for b in bins.values():
        if not os.access(b, os.X_OK):
            print(f"bench: {b} is missing; run `cargo build --workspace --release --bins` (or `make bench`)", file=sys.stderr)
            return 2
    params = {
        "quick": a.quick,
        "scale": a.scale,
        "rate_limit": a.rate_limit,
        "rate_window_s": a.rate_window,
        "latency_ms": a.latency_ms,
        "per_record_us": a.per_record_us,
        "unthrottled_scale": a.unthrottled_scale,
        "candidates_scale": a.candidates_scale,
        "memory_scales": list(a.memory_scales),
        "current_scale": a.current_scale,
        "current_rounds": a.current_rounds,
        "current_mutation": a.current_mutation,
        "aligned_start": a.align,
        "windows_scale": a.windows_scale,
        "skipped": [n for n, s in [("rate_limited", a.skip_rate_limited), ("windows", a.skip_windows),
                                   ("unthrottled", a.skip_unthrottled),
                                   ("memory", a.skip_memory),
                                   ("current_tables", a.skip_current_tables)] if s],
        "extractor_config": "defaults (no --config): every non-sensitive stream, per_page 500",
        "bin_dir": str(a.bin_dir),
    }
    res = {"machine": machine(), "parameters": params, "sections": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="gh-bench-") as tmp:
            work = Path(tmp)
            if not a.skip_rate_limited:
                print(f"bench: rate-limited full sync at scale {a.scale:g} "
                      f"({a.rate_limit}/{a.rate_window} s, {a.latency_ms} ms + {a.per_record_us} µs/record)…",
                      file=sys.stderr, flush=True)
                rl = rate_limited_section(a, bins, work)
                res["sections"]["rate_limited"] = rl
                res["sections"]["peers"] = peers_section(rl, a)
            if not a.skip_windows:
                print(f"bench: window lengths (scale {a.windows_scale:g}, {len(WINDOW_CASES)} full syncs at "
                      "3 requests/s)…", file=sys.stderr, flush=True)
                res["sections"]["windows"] = windows_section(a, bins, work)
            if not a.skip_unthrottled:
                print("bench: unthrottled full sync and candidates-only sync…", file=sys.stderr, flush=True)
                res["sections"]["unthrottled"] = {
                    "all": unthrottled_run(a, bins, work, a.unthrottled_scale, "unthrottled"),
                    "candidates": unthrottled_run(a, bins, work, a.candidates_scale, "candidates", ["candidates"]),
                }
            if not a.skip_memory:
                print("bench: memory (full syncs at two scales)…", file=sys.stderr, flush=True)
                lo, hi = (unthrottled_run(a, bins, work, s, f"memory-{s:g}") for s in a.memory_scales)
                res["sections"]["memory"] = {"low": lo, "high": hi, "ratio": hi["peak_rss_mb"] / lo["peak_rss_mb"]}
            if not a.skip_current_tables:
                print(f"bench: current tables (scale {a.current_scale:g}: full, {a.current_rounds} × mutate → "
                      "incremental, no change; raw vs current)…", file=sys.stderr, flush=True)
                res["sections"]["current_tables"] = current_tables_section(a, bins, work)
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    finally:
        _cleanup()
    res["table"] = build_table(res)
    m = res["machine"]
    title = (f"greenhouse-extract benchmark — {m['date']}, commit {(m['git_commit'] or '?')[:10]}"
             f"{' (dirty)' if m['git_dirty'] else ''}, {m['cpu']} ×{m['cores']}, Linux {m['kernel']}"
             f"{' — QUICK MODE' if a.quick else ''}")
    print_table(res["table"], title)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"\nresults: {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
