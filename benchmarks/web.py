"""Load check of the web front end: 50 concurrent clients on the observation and hit-PNG routes.

A bucket of 1,000 results (written with `write_results`, indexed in a SQLite job store) is served
by `bl-reservoir serve` in a subprocess. Each client loops for the given time: the observation's
JSON (`/api/observations/{obs}`), then a thumbnail of one of its hits, and every fifth round the
full waterfall. The anchor is the same app with its picture cache turned off and waterfalls
drawn in the request's thread (`picture_cache_size=0, render_processes=0`: every PNG is
rendered on request); ours is `bl-reservoir serve` as shipped (the cache, and waterfalls
drawn by `--render-processes` processes: none below 4 CPUs, else half the CPUs, at most 4). Each server first gets a few
unmeasured seconds of the same load on other hits (imports, connections). Prints requests per second, p50/p95
latency per route, the server's peak memory, and the ratios ours / anchor.

    python benchmarks/web.py [--results 1000] [--clients 50] [--seconds 20] [--seed 0]
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
        index = np.sort(rng.choice(1 << 20, HITS_PER_RESULT, replace=False))
        hits = {"index": index, "freqs": fch1 + FOFF * index, "coarse_channel": np.zeros(HITS_PER_RESULT, int)}
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


async def client(base: str, names: list[str], seconds: float, seed: int, out: dict[str, list[float]],
                 errors: list[str]) -> None:
    import httpx

    rng = random.Random(seed)
    end = time.monotonic() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        round_ = 0
        while time.monotonic() < end:
            obs, package, name = rng.choice(names).split("/")
            i = rng.randrange(HITS_PER_RESULT)
            requests = [("observation", f"/api/observations/{obs}"),
                        ("hit thumbnail PNG", f"/api/observations/{obs}/{package}/{name}/hits/{i}.png?size=thumb")]
            if round_ % 5 == 4:
                requests.append(("hit waterfall PNG", f"/api/observations/{obs}/{package}/{name}/hits/{i}.png"))
            for route, path in requests:
                t0 = time.perf_counter()
                response = await http.get(path)
                out.setdefault(route, []).append(time.perf_counter() - t0)
                if response.status_code != 200:
                    errors.append(f"{path}: {response.status_code}")
            round_ += 1


def peak_rss_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(label: str, command: list[str], port: int, names: list[str], clients: int, seconds: float,
         seed: int, warmup: float) -> dict:
    proc = start(command, port)
    try:
        latencies: dict[str, list[float]] = {}
        errors: list[str] = []

        async def run_all(duration: float, first_seed: int, into: dict) -> None:
            await asyncio.gather(*(client(f"http://127.0.0.1:{port}", names, duration, first_seed + k, into, errors)
                                   for k in range(clients)))

        # warm-up with other seeds (other hits): first imports and connections, not these requests' pictures
        asyncio.run(run_all(warmup, seed + 10_000, {}))
        t0 = time.perf_counter()
        asyncio.run(run_all(seconds, seed, latencies))
        wall = time.perf_counter() - t0
        peak = peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    total = sum(len(v) for v in latencies.values())
    every = np.concatenate([np.array(v) for v in latencies.values()])
    print(f"\n{label}: {total} requests in {wall:.1f} s = {total / wall:.1f} req/s, "
          f"p95 {np.percentile(every, 95) * 1e3:.0f} ms, errors {len(errors)}, server peak RSS {peak:.0f} MiB")
    for route, values in latencies.items():
        v = np.array(values)
        print(f"  {route:<20} {len(v):>6} req  {len(v) / wall:7.1f} req/s  p50 {np.percentile(v, 50) * 1e3:7.1f} ms"
              f"  p95 {np.percentile(v, 95) * 1e3:7.1f} ms")
    if errors:
        print("  first errors:", errors[:3])
    return {"rps": total / wall, "p95": float(np.percentile(every, 95)), "peak": peak, "errors": len(errors)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds of load first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="blr-web-bench-") as tmp:
        t0 = time.perf_counter()
        bucket, db, names = make_bucket(Path(tmp), args.results, args.seed)
        print(f"bucket of {args.results} results ({args.results * HITS_PER_RESULT} hits) written and indexed "
              f"in {time.perf_counter() - t0:.1f} s; {args.clients} clients x {args.seconds:.0f} s per server; "
              f"{os.cpu_count()} CPUs on this machine (client and server share them)")
        port = free_port()
        ours = load("ours (bl-reservoir serve)", [sys.executable, "-m", "bl_reservoir.cli", "serve", "--port",
                                                  str(port), "--bucket", bucket, "--db", db, "--no-index"],
                    port, names, args.clients, args.seconds, args.seed, args.warmup)
        port = free_port()
        anchor = load("anchor (same app, picture cache off)", [sys.executable, "-c", ANCHOR, bucket, db, str(port)],
                      port, names, args.clients, args.seconds, args.seed, args.warmup)
    print(f"\nratio ours/anchor: throughput x{ours['rps'] / anchor['rps']:.2f}, "
          f"p95 latency x{ours['p95'] / anchor['p95']:.2f} (lower is better)")
    return 1 if ours["errors"] or anchor["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
