"""The saved report: `sensitivity.json`, PNG plots and `report.md`, in a folder and in the bucket.

Layout, read by the web front end's Sensitivity page: `<bucket>/sensitivity/<name>/` holds
`sensitivity.json`, `report.md`, `recall_vs_snr.png` and `recall_drift_snr.png` (and the other
plots named in the JSON's `plots`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bl_reservoir.results import to_jsonable, utcnow
from bl_reservoir.sensitivity.harness import HIT_WINDOWS, Design, Injected, Recovery
from bl_reservoir.sensitivity.matching import Tolerances
from bl_reservoir.sensitivity.summary import RECALL_LEVEL, summarise

log = logging.getLogger(__name__)

SCHEMA = 1
JSON_NAME, MARKDOWN_NAME = "sensitivity.json", "report.md"
PLOTS = {"recall_vs_snr": "recall_vs_snr.png", "recall_drift_snr": "recall_drift_snr.png",
         "recall_vs_drift": "recall_vs_drift.png", "recall_vs_width": "recall_vs_width.png"}


def build(name: str, design: Design, injected: Injected, recoveries: Sequence[Recovery],
          tolerances: Tolerances, *, quick: bool = False, wall_seconds: float | None = None) -> dict[str, Any]:
    """The whole `sensitivity.json` document."""
    algorithms: dict[str, Any] = {}
    for rec in recoveries:
        entry: dict[str, Any] = {"version": rec.version, "options": list(rec.options), "error": rec.error,
                                 "matching": "window" if rec.algorithm in HIT_WINDOWS else "path",
                                 "wall_seconds": rec.wall_seconds}
        if rec.algorithm in HIT_WINDOWS:
            entry["hit_window_channels"] = HIT_WINDOWS[rec.algorithm]
        if rec.error is None:
            entry.update(summarise(rec.truth, rec.signal_hits, rec.noise_hits,
                                   injected.signal_bandwidth_mhz, injected.noise_bandwidth_mhz))
        algorithms[rec.algorithm] = entry
    geometry = design.geometry
    return to_jsonable({
        "schema": SCHEMA, "name": name, "created_at": utcnow(), "quick": quick, "seed": design.seed,
        "wall_seconds": wall_seconds, "recall_level": RECALL_LEVEL,
        "grid": design.grid.to_dict(),
        "observations": {
            "format": "h5", "n_time": design.n_time, "tsamp_s": geometry.tsamp, "foff_hz": geometry.foff_hz,
            "coarse_channel_width": design.coarse_channel_width, "slot_width_channels": design.slot_width,
            "n_signals": len(injected.truth), "signal_files": len(injected.signal_files),
            "noise_files": len(injected.noise_files),
            "signal_bandwidth_mhz": injected.signal_bandwidth_mhz,
            "noise_bandwidth_mhz": injected.noise_bandwidth_mhz,
            "snr_definition": "setigen: peak per-channel intensity of the time-integrated signal over the "
                              "standard deviation of the time-integrated noise",
        },
        "tolerances": tolerances.to_dict(geometry),
        "plots": dict(PLOTS),
        "algorithms": algorithms,
    })


def write(doc: Mapping[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """Write `sensitivity.json`, the plots and `report.md` into `out_dir`; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / JSON_NAME).write_text(json.dumps(doc, indent=2))
    paths = [out / JSON_NAME, *plot(doc, out)]
    (out / MARKDOWN_NAME).write_text(markdown(doc))
    return [*paths, out / MARKDOWN_NAME]


def upload(paths: Sequence[Path], bucket: str, name: str) -> str:
    """Copy the report files to `<bucket>/sensitivity/<name>/`; returns that URI."""
    from bl_reservoir.errors import UploadError
    from bl_reservoir.storage import SENSITIVITY, open_bucket

    fs, root = open_bucket(bucket)
    dest = f"{root.rstrip('/')}/{SENSITIVITY}/{name}"
    try:
        fs.makedirs(dest, exist_ok=True)
        for path in paths:
            fs.put_file(str(path), f"{dest}/{path.name}")
    except OSError as exc:
        raise UploadError(bucket, f"cannot write {SENSITIVITY}/{name}: {exc}") from None
    return f"{bucket.rstrip('/')}/{SENSITIVITY}/{name}"


def _ok(doc: Mapping[str, Any]) -> dict[str, Any]:
    return {name: a for name, a in doc["algorithms"].items() if a.get("error") is None}


def plot(doc: Mapping[str, Any], out: Path) -> list[Path]:
    """Recall against SNR, drift and width (one line per algorithm), and drift-SNR heat maps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    algorithms = _ok(doc)
    written = []
    for key, axis, label in (("recall_vs_snr", "snr", "injected SNR"),
                             ("recall_vs_drift", "drift_rate", "drift rate (Hz/s)"),
                             ("recall_vs_width", "width", "signal width FWHM (Hz)")):
        fig, ax = plt.subplots(figsize=(8.6, 4.4), dpi=100, layout="constrained")
        for i, (name, entry) in enumerate(algorithms.items()):
            curve = entry[f"recall_by_{axis.split('_')[0]}"]
            line, = ax.plot([r[axis] for r in curve], [r["recall"] for r in curve], "o-", label=name)
            if axis == "snr":
                for flag, style in (("off", ":"), ("on", "--")):
                    part = entry["doppler_smearing"].get(flag)
                    if part:
                        ax.plot([r["snr"] for r in part["recall_by_snr"]], [r["recall"] for r in part["recall_by_snr"]],
                                style, color=line.get_color(), alpha=0.6, label=f"  smearing {flag}")
        if axis == "snr":
            ax.axhline(doc["recall_level"], color="grey", lw=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("recall (fraction of injected signals found)")
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        if algorithms:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        ax.set_title(f"{doc['name']}: recall against {label.split(' (')[0]}", fontsize=10)
        fig.savefig(out / PLOTS[key])
        plt.close(fig)
        written.append(out / PLOTS[key])
    written.append(_heat_maps(doc, algorithms, out, plt))
    return written


def _heat_maps(doc: Mapping[str, Any], algorithms: Mapping[str, Any], out: Path, plt) -> Path:
    """One column per algorithm; rows: all signals, then smearing off and on when both were injected."""
    names = list(algorithms) or ["(none)"]
    rows = [("all signals", lambda a: a["recall_drift_snr"])]
    for flag in ("off", "on"):
        if all(flag in a["doppler_smearing"] for a in algorithms.values()) and algorithms:
            rows.append((f"smearing {flag}", lambda a, f=flag: a["doppler_smearing"][f]["recall_drift_snr"]))
    fig, axes = plt.subplots(len(rows), len(names), figsize=(4.4 * len(names) + 1.2, 3.4 * len(rows)), dpi=100,
                             squeeze=False, layout="constrained")
    image = None
    for r, (label, plane_of) in enumerate(rows):
        for c, name in enumerate(names):
            ax = axes[r][c]
            if name not in algorithms:
                ax.set_axis_off()
                continue
            plane = plane_of(algorithms[name])
            values = np.array([[np.nan if v is None else v for v in row] for row in plane["recall"]], dtype=float)
            image = ax.imshow(values, origin="lower", aspect="auto", vmin=0, vmax=1, cmap="viridis")
            if values.size <= 150:  # small planes: print each cell's recall in percent
                for (i, j), value in np.ndenumerate(values):
                    if np.isfinite(value):
                        ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=6,
                                color="black" if value > 0.6 else "white")
            ax.set_xticks(range(len(plane["snr"])), [f"{v:g}" for v in plane["snr"]], fontsize=7)
            ax.set_yticks(range(len(plane["drift_rate"])), [f"{v:g}" for v in plane["drift_rate"]], fontsize=7)
            ax.set_xlabel("injected SNR", fontsize=8)
            ax.set_ylabel("drift rate (Hz/s)", fontsize=8)
            ax.set_title(f"{name}: {label}", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), label="recall", shrink=0.6)
    fig.suptitle(f"{doc['name']}: recall (%) over drift rate and injected SNR", fontsize=10)
    path = out / PLOTS["recall_drift_snr"]
    fig.savefig(path)
    plt.close(fig)
    return path


def _fmt(value: Any, spec: str = ".3g") -> str:
    return "—" if value is None else format(value, spec)


def markdown(doc: Mapping[str, Any]) -> str:
    """`report.md`: what was run, one table row per algorithm, the plots."""
    grid, obs, tol = doc["grid"], doc["observations"], doc["tolerances"]
    lines = [
        f"# Sensitivity: {doc['name']}", "",
        f"Injection and recovery with `bl-reservoir sensitivity`{' --quick' if doc['quick'] else ''} "
        f"(seed {doc['seed']}, {doc['created_at']}). {obs['n_signals']} signals in {obs['signal_files']} "
        f"file(s) ({obs['signal_bandwidth_mhz']:.3g} MHz), noise-only {obs['noise_bandwidth_mhz']:.3g} MHz; "
        f"{obs['n_time']} spectra of {obs['tsamp_s']:.4g} s, {abs(obs['foff_hz']):.4g} Hz channels, coarse "
        f"channels of {obs['coarse_channel_width']} fine channels.", "",
        f"Grid: SNR {_values(grid['snr'])}; drift {_values(grid['drift_rate'])} Hz/s; width "
        f"{_values(grid['width'])} Hz; Doppler smearing {_values(grid['doppler_smearing'])}; "
        f"{grid['trials']} trial(s) per point ({grid['sampling']}).", "",
        f"Matching: a hit's start channel within {tol['channels']:g} + B/2 channels of the signal's and its "
        f"drift within {tol['drift_bins']:g} + B drift bins of {tol['drift_bin_hz_s']:.3g} Hz/s, where B is the "
        "band the signal covers in one spectrum (FWHM, plus the drift per spectrum when Doppler-smeared). "
        "Algorithms without a drift rate are matched on channel overlap only (see docs/sensitivity.md).", "",
        f"| algorithm | matching | recall | SNR at {doc['recall_level']:.0%} recall | smearing off / on "
        "| position only: recall, SNR at 90% | false hits per MHz (noise-only) "
        "| unmatched hits per MHz (signal files) | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, a in doc["algorithms"].items():
        if a.get("error"):
            lines.append(f"| {name} | failed: {a['error']} | | | | | | | |")
            continue
        smear = a["doppler_smearing"]
        off, on = (smear.get(k, {}).get("snr_at_90") for k in ("off", "on"))
        fh, uh, pos = a["false_hits"], a["unmatched_hits_in_signal_files"], a.get("position_only") or {}
        lines.append(
            f"| `{name}` | {a['matching']} | {a['n_found']}/{a['n_signals']} ({a['recall']:.0%}) | "
            f"{_fmt(a['snr_at_90'])} | {_fmt(off)} / {_fmt(on)} | "
            f"{_fmt(pos.get('recall'), '.0%')}, {_fmt(pos.get('snr_at_90'))} | {_fmt(fh['per_mhz'])} "
            f"({fh['count']} hits; 95% upper {_fmt(fh['per_mhz_upper_95'])}) | {_fmt(uh['per_mhz'])} | "
            f"{a['wall_seconds']:.1f} |")
    lines += ["", "— in an SNR column: recall never reached the level on this grid. *Position only* counts a "
              "signal as found when any hit starts on its path, whatever drift rate the hit reports: it "
              "separates \"detected\" from \"drift measured within tolerance\".", ""]
    lines += _by_drift_table(doc)
    for key, file in doc["plots"].items():
        lines += [f"![{key.replace('_', ' ')}]({file})", ""]
    return "\n".join(lines)


def _by_drift_table(doc: Mapping[str, Any]) -> list[str]:
    """SNR at 90% recall per drift rate: one column per algorithm, `smearing off / on` per cell."""
    algorithms = _ok(doc)
    if not algorithms:
        return []
    cells: dict[float, dict[str, list[str]]] = {}
    for name, a in algorithms.items():
        for flag in ("off", "on"):
            for row in a["doppler_smearing"].get(flag, {}).get("snr_at_90_by_drift", []):
                cells.setdefault(row["drift_rate"], {}).setdefault(name, []).append(_fmt(row["snr_at_90"]))
    lines = [f"SNR at {doc['recall_level']:.0%} recall by drift rate (smearing off / on):", "",
             "| drift (Hz/s) | " + " | ".join(f"`{n}`" for n in algorithms) + " |",
             "|---" * (len(algorithms) + 1) + "|"]
    for drift in sorted(cells):
        lines.append(f"| {drift:g} | " + " | ".join(" / ".join(cells[drift].get(n, ["—"])) for n in algorithms)
                     + " |")
    return [*lines, ""]


def _values(values: Sequence[Any]) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v).lower() for v in values)
