"""An algorithm's pickles (`header.pkl`, `info_df.pkl`), read only by the algorithm's own interpreter in a
subprocess (`unpickle_command`), which hands back JSON and one `.npy` per column: this process never
unpickles anything an algorithm wrote."""

from __future__ import annotations

import functools
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bl_reservoir.errors import InvalidResults
from bl_reservoir.results.values import to_jsonable

#: What `unpickle_command` writes: the header as JSON, the hits' column names, one `.npy` per column.
UNPICKLED_HEADER, UNPICKLED_COLUMNS = "header.json", "columns.json"
#: Seconds the algorithm's interpreter gets to read its own pickles (`complete_results` run alone).
UNPICKLE_TIMEOUT_S = 600.0


def _unpickled_copies(out_dir: str, to_dir: str) -> None:
    """Run by `unpickle_command` in the algorithm's interpreter (numpy and pandas, no bl_reservoir):
    read `header.pkl` and `info_df.pkl` from `out_dir`, write `header.json`, `columns.json` and one
    `col_<i>.npy` per column to `to_dir`; on failure, one line on stderr and exit code 3."""
    import json
    import pickle
    import sys
    from collections.abc import Mapping
    from pathlib import Path

    import numpy as np
    import pandas as pd

    def fail(reason: str) -> None:
        print(reason.replace("\n", " "), file=sys.stderr, flush=True)
        sys.exit(3)

    out, to = Path(out_dir), Path(to_dir)
    try:
        with open(out / "header.pkl", "rb") as f:
            header = pickle.load(f)
        hits = pd.read_pickle(out / "info_df.pkl")
    except Exception as exc:  # noqa: BLE001 - whatever the pickles hold, one line says why
        fail(f"unreadable results file ({type(exc).__name__}: {exc})")
    if not isinstance(header, Mapping):
        fail(f"header.pkl holds a {type(header).__name__}, expected a dict")
    if not isinstance(hits, pd.DataFrame):
        fail(f"info_df.pkl holds a {type(hits).__name__}, expected a pandas DataFrame")
    hits = index_as_column(hits)  # noqa: F821 - shipped beside this function by unpickle_command
    (to / "header.json").write_text(json.dumps(to_jsonable(dict(header))))  # noqa: F821 - shipped too
    for i, name in enumerate(hits.columns):
        column = hits[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = column.to_numpy(dtype=np.float64 if column.hasnans else None, na_value=np.nan)
        else:
            values = column.to_numpy()
        if values.dtype == object:  # strings, bytes or a mix: a plain array type loads without pickle
            values = np.asarray(values.tolist())
            if values.dtype == object:
                values = column.astype(str).to_numpy().astype(str)
        np.save(to / f"col_{i}.npy", values, allow_pickle=False)
    (to / "columns.json").write_text(json.dumps([str(name) for name in hits.columns]))


@functools.cache
def _unpickle_program() -> str:
    # The algorithm's interpreter may lack bl_reservoir (an external package's venv): the few
    # functions it needs travel as source.
    parts = [inspect.getsource(fn) for fn in (to_jsonable, index_as_column, _unpickled_copies)]
    return "\n".join(["from __future__ import annotations", "import math", "from collections.abc import Mapping",
                      "from typing import Any", "import numpy as np", "import pandas as pd", *parts,
                      "import sys", "_unpickled_copies(sys.argv[1], sys.argv[2])"])


def unpickle_command(out_dir: str | os.PathLike, to_dir: str | os.PathLike, python: str | None = None) -> list[str]:
    """argv that reads `out_dir`'s pickles in `python` (the algorithm's interpreter; default this one) and
    writes what `read_unpickled` reads into `to_dir`. Exit code 3 and one line on stderr when unreadable."""
    return [python or sys.executable, "-c", _unpickle_program(), os.fspath(out_dir), os.fspath(to_dir)]


def unpickle_here(out: Path, to_dir: str) -> None:
    try:
        proc = subprocess.run(unpickle_command(out, to_dir), capture_output=True, text=True, check=False,
                              timeout=UNPICKLE_TIMEOUT_S, stdin=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise InvalidResults(out, f"reading the pickles took over {UNPICKLE_TIMEOUT_S:g} s") from None
    if proc.returncode != 0:
        raise InvalidResults(out, unpickle_failure(proc.returncode, proc.stderr))


def unpickle_failure(code: int, stderr: str) -> str:
    """The one-line reason of a failed `unpickle_command` (its last line on stderr)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if code == 3 and lines else f"reading the pickles failed (exit code {code})" + (
        f": {lines[-1]}" if lines else "")


def read_unpickled(out_dir: str | os.PathLike, from_dir: str | os.PathLike) -> tuple[dict[str, Any], pd.DataFrame]:
    """(header, hits) from what `unpickle_command` wrote in `from_dir`: JSON and `.npy`, no pickle."""
    base = Path(from_dir)
    try:
        header = json.loads((base / UNPICKLED_HEADER).read_bytes())
        names = json.loads((base / UNPICKLED_COLUMNS).read_bytes())
        if not isinstance(header, dict) or not isinstance(names, list):
            raise ValueError("not the header object and column list")
        columns = [np.load(base / f"col_{i}.npy", allow_pickle=False) for i in range(len(names))]
        hits = pd.DataFrame(dict(enumerate(columns)), index=pd.RangeIndex(len(columns[0]) if columns else 0))
    except (OSError, ValueError, RecursionError) as exc:
        raise InvalidResults(out_dir, f"unreadable results file ({type(exc).__name__}: {exc})") from None
    hits.columns = [str(name) for name in names]
    return header, hits


def index_as_column(hits: pd.DataFrame) -> pd.DataFrame:
    if "index" not in hits.columns and hits.index.name == "index":
        return hits.reset_index()  # `df.set_index("index")` kept: the channel is the frame's index
    return hits.reset_index(drop=True)
