"""Small C1 algorithms registered through a real entry point, for runner, scale and web tests.

`install(root, monkeypatch)` writes a module package `blr_testalgs` and a `.dist-info` with an
`entry_points.txt` under `root`, puts `root` on `sys.path` (for the registry) and `PYTHONPATH`
(for the algorithm subprocesses). Algorithms (`testalgs/<name>`):

- `ok`: one hit per coarse channel at the brightest fine channel of the time-averaged spectrum;
  writes only the three original files, like an external algorithm. Prints its arguments
  and NUMBA_NUM_THREADS.
- `crash`: prints a few lines, then exits with code 3.
- `sleepy`: sleeps for ten minutes (for timeouts).
- `mismatch`: two hits but one stamp.
- `missing`: writes only `header.pkl`.
- `func`: a `module:function` entry point; `main(argv)` writes a folder with no hits.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

PACKAGE = "blr_testalgs"
NAMES = ("ok", "crash", "sleepy", "mismatch", "missing")
FUNCTIONS = {"func": "main"}
STAMP_WIDTH = 32

_COMMON = '''
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def args():
    inp = sys.argv[1]
    out = Path(sys.argv[2] if len(sys.argv) > 2 and not sys.argv[2].startswith("--") else inp.rsplit(".", 1)[0])
    out.mkdir(parents=True, exist_ok=True)
    return inp, out


def write(out, header, hits, stamps):
    with open(out / "header.pkl", "wb") as f:
        pickle.dump(dict(header), f)
    hits.to_pickle(out / "info_df.pkl")
    np.save(out / "filtered.npy", np.asarray(stamps, dtype=np.float32), allow_pickle=False)
'''

_SOURCES = {
    "ok": '''
from blr_testalgs._common import args, write, np, pd
from bl_reservoir.io import open_observation

inp, out = args()
print("ok called with", " ".join(__import__("sys").argv[1:]), flush=True)
print("NUMBA_NUM_THREADS=" + __import__("os").environ.get("NUMBA_NUM_THREADS", "unset"), flush=True)
rows, stamps = [], []
with open_observation(inp) as obs:
    w = obs.coarse_channel_width
    for cc, block in obs.iter_coarse_channels():
        i = int(np.argmax(block.mean(axis=0)))
        lo = min(max(i - 16, 0), w - 32)
        rows.append({"index": cc * w + i, "freqs": float(obs.frequencies(cc * w + i, cc * w + i + 1)[0]),
                     "coarse_channel": cc})
        stamps.append(block[:, lo:lo + 32])
    write(out, obs.header, pd.DataFrame(rows), np.stack(stamps))
''',
    "crash": '''
import sys
print("loading the observation", flush=True)
print("searching coarse channel 0", flush=True)
print("ValueError: the sky fell in coarse channel 1", file=sys.stderr, flush=True)
sys.exit(3)
''',
    "sleepy": '''
import time
print("sleeping", flush=True)
time.sleep(600)
''',
    "mismatch": '''
from blr_testalgs._common import args, write, np, pd
inp, out = args()
hits = pd.DataFrame({"index": [1, 2], "freqs": [1500.0, 1500.1], "coarse_channel": [0, 0]})
write(out, {"fch1": 1500.0}, hits, np.zeros((1, 16, 32)))
''',
    "missing": '''
import pickle
from blr_testalgs._common import args
inp, out = args()
with open(out / "header.pkl", "wb") as f:
    pickle.dump({"fch1": 1500.0}, f)
''',
    "func": '''
from pathlib import Path
from blr_testalgs._common import write, np, pd


def main(argv):
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    print("func got", argv, flush=True)
    hits = pd.DataFrame({"index": [], "freqs": [], "coarse_channel": []})
    write(out, {"fch1": 1500.0, "foff": -1e-6, "nchans": 8}, hits, np.zeros((0, 16, 32)))
    return 0
''',
}


def install(root: Path, monkeypatch) -> Path:
    """Write the package and its entry points under `root` and make both importable; returns `root`."""
    package = root / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "_common.py").write_text(textwrap.dedent(_COMMON))
    for name in (*NAMES, *FUNCTIONS):
        (package / f"{name}.py").write_text(textwrap.dedent(_SOURCES[name]))
    dist = root / "blr_testalgs-1.2.3.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: blr-testalgs\nVersion: 1.2.3\n")
    entries = "\n".join([*(f"testalgs/{name} = {PACKAGE}.{name}" for name in NAMES),
                         *(f"testalgs/{name} = {PACKAGE}.{name}:{fn}" for name, fn in FUNCTIONS.items())])
    (dist / "entry_points.txt").write_text(f"[bl_reservoir.algorithms]\n{entries}\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    return root
