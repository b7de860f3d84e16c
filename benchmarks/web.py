"""Load check of the web front end: 50 concurrent clients on the hits table and the hit pictures.

A bucket of 1,000 results (written with `write_results`, indexed in a SQLite job store) is served
by `bl-reservoir serve` in a subprocess. Each client loops for the given time: one result's hits
JSON (`/api/observations/{obs}/{package}/{name}/hits`, the page the hits table loads), the
thumbnail PNG of one of its hits and, every fifth round, the full waterfall PNG; then it pauses
about `--think-s` (1 s: a person looking at the page; 0 makes it a saturating stress test, where
latency is mostly queueing: clients / throughput). Half the rounds
pick a result of a small "hot" set (what many people look at), half any result. Every request
counts as cold (the first of its URL in this run: the server reads the bucket and draws) or
cached (asked before: the server's caches answer), and p50/p95 are printed per route and per
cold/cached, with the goals: p95 < 100 ms for a cached thumbnail, < 1 s for a cold picture.

The anchor is the same app with its picture cache turned off and waterfalls drawn in the
request's thread (`picture_cache_size=0, render_processes=0`: every PNG is drawn on request); ours
is `bl-reservoir serve` as shipped (the cache, and waterfalls drawn by `--render-processes`
processes: half the CPUs, 1 to 4). Each server first gets a few unmeasured seconds of the same load on
the hot set. Prints the ratios ours / anchor of throughput and cached-thumbnail p95.

    python benchmarks/web.py [--results 1000] [--clients 50] [--seconds 20] [--hot 20] [--seed 0] [--no-anchor]
                             [--render-processes N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bl_reservoir.results import build_manifest, write_results
from bl_reservoir.scale.index import HitIndex

FOFF = -2.7939677238464355e-6  # MHz
HITS_PER_RESULT = 8
#: p95 goals (ms) on a 2-core machine: (route, cold or cached) -> milliseconds.
GOALS_MS = {("hit thumbnail PNG", "cached"): 100.0, ("hit thumbnail PNG", "cold"): 1000.0,
            ("hit waterfall PNG", "cold"): 1000.0}
ANCHOR = ("import sys, uvicorn; from bl_reservoir.web import create_app; "
          "app = create_app(bucket=sys.argv[1], db=sys.argv[2], index_on_start=False, picture_cache_size=0, "
          "render_processes=0); uvicorn.run(app, host='127.0.0.1', port=int(sys.argv[3]), log_level='warning')")


def make_bucket(root: Path, n_results: int, seed: int) -> tuple[str, str, list[str]]:
    """(bucket, store URL, observation names): alternating energy-detection and dedoppler-like results."""
    rng = np.random.default_rng(seed)
    bucket, db = root / "bucket", f"sqlite:///{root / 'store.db'}"
    index = HitIndex(db)
    names = []
    for i in range(n_results):
        name = f"GBT_{58000 + i // 50}_{i:05d}_HIP{1000 + i}_fine"
        fch1 = 1100.0 + (i % 400) * 2.0
        channels = np.sort(rng.choice(1 << 20, HITS_PER_RESULT, replace=False))
        hits = {"index": channels, "freqs": fch1 + FOFF * channels, "coarse_channel": np.zeros(HITS_PER_RESULT, int)}
        if i % 2:
            package, alg, width = "dedoppler", "search", 129
            hits.update(drift_rate=rng.uniform(-2, 2, HITS_PER_RESULT), snr=rng.uniform(10, 80, HITS_PER_RESULT))
        else:
            package, alg, width = "energy_detection", "preprocess_fine", 256
            hits.update(statistic=rng.uniform(2048, 9000, HITS_PER_RESULT), pvalue=np.zeros(HITS_PER_RESULT))
        frame = pd.DataFrame(hits)
        stamps = rng.normal(size=(HITS_PER_RESULT, 16, width)).astype(np.float32)
        header = {"source_name": f"HIP{1000 + i}", "tstart": 58000.0 + i / 50, "fch1": fch1, "foff": FOFF,
                  "nchans": 1 << 20, "tsamp": 18.253611008, "nbits": 32, "nifs": 1, "telescope_id": 6}
        manifest = build_manifest(algorithm={"package": package, "name": alg, "version": "bench"},
                                  input_uri=f"/data/{name}.h5")
        out = write_results(bucket / name / package / alg, header, frame, stamps, manifest)
        index.index_result(None, name, f"{package}/{alg}", str(out), header, frame)
        names.append(f"{name}/{package}/{alg}")
    index.close()
    return str(bucket), db, names


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(command: list[str], port: int) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not start within 120 s")


class Seen:
    """URLs answered so far in this run (all clients share one event loop): a request is cold when its URL
    had not been answered before it was sent."""

    def __init__(self) -> None:
        self.done: set[str] = set()

    def kind(self, path: str) -> str:
        return "cached" if path in self.done else "cold"


def rounds(names: list[str], hot: int, rng: random.Random) -> list[tuple[str, str]]:
    """One client's round: (route, path) of a result's hits JSON, a hit's thumbnail, and every fifth round
    the full waterfall (the caller adds it)."""
    obs, package, name = (rng.choice(names[:hot]) if rng.random() < 0.5 else rng.choice(names)).split("/")
    base = f"/api/observations/{obs}/{package}/{name}"
    i = rng.randrange(HITS_PER_RESULT)
    return [("hits JSON", f"{base}/hits?limit=100&sort=freqs"), ("hit thumbnail PNG", f"{base}/hits/{i}.png?size=thumb"),
            ("hit waterfall PNG", f"{base}/hits/{i}.png")]


async def client(base: str, names: list[str], hot: int, seconds: float, seed: int, seen: Seen,
                 out: dict[tuple[str, str], list[float]], errors: list[str], think_s: float) -> None:
    import httpx

    rng = random.Random(seed)
    end = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        await asyncio.sleep(rng.uniform(0, think_s))   # people arrive one by one, not all in the same instant
        round_ = 0
        while time.monotonic() < end:
            requests = rounds(names, hot, rng)
            for route, path in requests if round_ % 5 == 4 else requests[:2]:
                kind = seen.kind(path)
                t0 = time.perf_counter()
                response = await http.get(path)
                out.setdefault((route, kind), []).append(time.perf_counter() - t0)
                seen.done.add(path)
                if response.status_code != 200:
                    errors.append(f"{path}: {response.status_code}")
            round_ += 1
            if think_s:
                await asyncio.sleep(rng.uniform(0.5, 1.5) * think_s)   # a person looks at what came


async def warm(base: str, names: list[str], hot: int, seen: Seen) -> None:
    """Every URL of the hot set once (unmeasured), so its requests count as cached from the start."""
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        for name in names[:hot]:
            obs, package, alg = name.split("/")
            base_path = f"/api/observations/{obs}/{package}/{alg}"
            paths = [f"{base_path}/hits?limit=100&sort=freqs"] + [
                f"{base_path}/hits/{i}.png{size}" for i in range(HITS_PER_RESULT) for size in ("?size=thumb", "")]
            await asyncio.gather(*(http.get(p) for p in paths))
            seen.done.update(paths)


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(label: str, command: list[str], port: int, names: list[str], clients: int, seconds: float,
         seed: int, hot: int, think_s: float) -> dict:
    proc = start(command, port)
    base = f"http://127.0.0.1:{port}"
    try:
        latencies: dict[tuple[str, str], list[float]] = {}
        errors: list[str] = []
        seen = Seen()

        async def run_all() -> None:
            await asyncio.gather(*(client(base, names, hot, seconds, seed + k, seen, latencies, errors, think_s)
                                   for k in range(clients)))

        asyncio.run(warm(base, names, hot, seen))
        t0 = time.perf_counter()
        asyncio.run(run_all())
        wall = time.perf_counter() - t0
        peak = peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    total = sum(len(v) for v in latencies.values())
    print(f"\n{label}: {total} requests in {wall:.1f} s = {total / wall:.1f} req/s, errors {len(errors)}, "
          f"server peak RSS {peak:.0f} MiB")
    p95 = {}
    for (route, kind), values in sorted(latencies.items()):
        v = np.array(values) * 1e3
        p95[route, kind] = float(np.percentile(v, 95))
        print(f"  {route:<19} {kind:<6} {len(v):>6} req  p50 {np.percentile(v, 50):8.1f} ms  p95 {p95[route, kind]:8.1f} ms")
    for (route, kind), goal in GOALS_MS.items():
        found = p95.get((route, kind))
        verdict = "not measured" if found is None else ("met" if found < goal else "MISSED")
        print(f"  goal: {route} {kind} p95 < {goal:.0f} ms: {verdict}" + ("" if found is None else f" ({found:.0f} ms)"))
    if errors:
        print("  first errors:", errors[:3])
    return {"rps": total / wall, "p95": p95, "peak": peak, "errors": len(errors)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--hot", type=int, default=20, help="results in the hot set (warmed, then half the rounds)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--think-s", type=float, default=1.0,
                        help="mean pause of a client between rounds, as a person looks at a page (0: none, a "
                             "saturating stress: then latency is queueing, 50 clients / throughput)")
    parser.add_argument("--no-anchor", action="store_true", help="measure ours only")
    parser.add_argument("--render-processes", type=int, default=None, metavar="N",
                        help="ours with `serve --render-processes N` (default: serve's own choice)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="blr-web-bench-") as tmp:
        t0 = time.perf_counter()
        bucket, db, names = make_bucket(Path(tmp), args.results, args.seed)
        print(f"bucket of {args.results} results ({args.results * HITS_PER_RESULT} hits) written and indexed "
              f"in {time.perf_counter() - t0:.1f} s; {args.clients} clients x {args.seconds:.0f} s per server, "
              f"pausing {args.think_s:g} s on average between rounds; "
              f"{os.cpu_count()} CPUs on this machine (client and server share them)")
        port = free_port()
        serve = [sys.executable, "-m", "bl_reservoir.cli", "serve", "--port", str(port), "--bucket", bucket,
                 "--db", db, "--no-index"]
        if args.render_processes is not None:
            serve += ["--render-processes", str(args.render_processes)]
        ours = load("ours (bl-reservoir serve)", serve, port, names, args.clients, args.seconds, args.seed, args.hot,
                    args.think_s)
        if args.no_anchor:
            return 1 if ours["errors"] else 0
        port = free_port()
        anchor = load("anchor (same app, picture cache off)", [sys.executable, "-c", ANCHOR, bucket, db, str(port)],
                      port, names, args.clients, args.seconds, args.seed, args.hot, args.think_s)
    key = ("hit thumbnail PNG", "cached")
    print(f"\nratio ours/anchor: throughput x{ours['rps'] / anchor['rps']:.2f}, cached thumbnail p95 "
          f"x{ours['p95'].get(key, float('nan')) / anchor['p95'].get(key, float('nan')):.2f} (lower is better)")
    return 1 if ours["errors"] or anchor["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
