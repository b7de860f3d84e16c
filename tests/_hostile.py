"""C1 algorithms that misbehave on purpose, registered through a real entry point (`hostile/<name>`).

`install(root, monkeypatch)` writes a module package `blr_hostile` and its `.dist-info` under `root`,
as `_algorithms.install` does for `testalgs/*`. Each writes the three original files (pickles and
stamps, one hit per coarse channel, no JSON or Parquet copies) and then:

- `flaky`: nothing more; `--fail` exits with code 2 first, `--sleep S` sleeps S seconds first (for
  kills), and it prints its PID.
- `bomb`: its `info_df.pkl` runs code when unpickled: it writes the PID of the process that
  unpickles it to `$BLR_HOSTILE_MARKER`, then returns a valid DataFrame.
- `symlink`: adds `passwd.txt`, a symbolic link to `/etc/passwd`.
- `fifo`: adds a named pipe `stream`.
- `huge`: adds `junk.bin` of `--bytes N` zero bytes (default 3,000,000), after `--sleep S`, and
  with `--keep-writing` goes on appending forever (for the cap while it runs).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import _algorithms

PACKAGE = "blr_hostile"
NAMES = ("flaky", "bomb", "symlink", "fifo", "huge")

# testalgs' own helpers (`write` puts the three original files), and what these algorithms share
_COMMON = _algorithms._COMMON + '''
import argparse
import os
import time

from bl_reservoir.io import open_observation


def parse():
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("out")
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--bytes", type=int, default=3_000_000)
    parser.add_argument("--keep-writing", action="store_true")
    args = parser.parse_args()
    print(f"pid {os.getpid()}", flush=True)
    time.sleep(args.sleep)
    if args.fail:
        print("failing on purpose", file=sys.stderr, flush=True)
        sys.exit(2)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return args, out


def original_files(inp, out, hits_pickle=None):
    """The three original files: one hit per coarse channel at its fine channel 8 (`index` and `snr`
    only), its first 16 channels as the stamp; `hits_pickle`, when given, is written as info_df.pkl instead."""
    with open_observation(inp) as obs:
        w = obs.coarse_channel_width
        stamps = np.stack([block[:, :16] for _, block in obs.iter_coarse_channels()])
        write(out, obs.header, pd.DataFrame({"index": np.arange(len(stamps)) * w + 8, "snr": 10.0}), stamps)
    if hits_pickle is not None:
        (out / "info_df.pkl").write_bytes(hits_pickle)
'''

_SOURCES = {
    "flaky": '''
from blr_hostile._common import parse, original_files
args, out = parse()
original_files(args.input, out)
''',
    "bomb": '''
import os
import pickle
from blr_hostile._common import parse, original_files

MARKER = os.environ["BLR_HOSTILE_MARKER"]
FRAME = "__import__('pandas').DataFrame({'index': [1, 4097], 'snr': [9.0, 8.0]})"


class Bomb:
    def __reduce__(self):
        code = f"(open({MARKER!r}, 'w').write(str(__import__('os').getpid())), {FRAME})[1]"
        return (eval, (code,))


args, out = parse()
original_files(args.input, out, hits_pickle=pickle.dumps(Bomb()))
''',
    "symlink": '''
import os
from blr_hostile._common import parse, original_files
args, out = parse()
original_files(args.input, out)
os.symlink("/etc/passwd", out / "passwd.txt")
''',
    "fifo": '''
import os
from blr_hostile._common import parse, original_files
args, out = parse()
original_files(args.input, out)
os.mkfifo(out / "stream")
''',
    "huge": '''
import time
from blr_hostile._common import parse, original_files
args, out = parse()
original_files(args.input, out)
with open(out / "junk.bin", "wb") as f:
    f.write(bytes(args.bytes))
    while args.keep_writing:
        f.write(bytes(1 << 20))
        f.flush()
        time.sleep(0.05)
''',
}


def install(root: Path, monkeypatch) -> Path:
    """Write the package and its entry points under `root` and make both importable; returns `root`."""
    package = root / PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "_common.py").write_text(textwrap.dedent(_COMMON))
    for name in NAMES:
        (package / f"{name}.py").write_text(textwrap.dedent(_SOURCES[name]))
    dist = root / "blr_hostile-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: blr-hostile\nVersion: 0.1\n")
    entries = "\n".join(f"hostile/{name} = {PACKAGE}.{name}" for name in NAMES)
    (dist / "entry_points.txt").write_text(f"[bl_reservoir.algorithms]\n{entries}\n")
    monkeypatch.syspath_prepend(str(root))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])))
    return root
