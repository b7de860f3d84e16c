"""The documented commands, run verbatim as a newcomer runs them: every `bash` and `python` block of
README.md in order, in a fresh copy of the repository (the first block makes the venv and runs the
demo), then every block of docs/algorithms.md in an empty folder with that venv. A block preceded by
`<!-- not-run: why -->` is skipped; syntax summaries are `text` blocks. Then the demo's last advice:
`bl-reservoir serve`, and its pages open."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "docs/algorithms.md")
_FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not-run:\s*(.+?)\s*-->\s*$")


@dataclass
class Block:
    doc: str
    line: int
    lang: str
    text: str
    not_run: str | None


def blocks(doc: str) -> list[Block]:
    """Fenced blocks of a Markdown file with their language and any `not-run` reason just above them."""
    lines = (ROOT / doc).read_text().splitlines()
    found, i = [], 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        indent, lang = opened.groups()
        above, j = None, i - 1
        while j >= 0 and lines[j].strip().startswith("<!--"):
            reason = _NOT_RUN.match(lines[j])
            above = above or (reason.group(1) if reason else None)
            j -= 1
        end = next(k for k in range(i + 1, len(lines)) if lines[k].strip() == "```")
        body = "\n".join(line[len(indent):] for line in lines[i + 1:end])
        found.append(Block(doc, i + 1, lang, body + "\n", above))
        i = end + 1
    return found


def runnable(doc: str) -> list[Block]:
    return [b for b in blocks(doc) if b.lang in ("bash", "python") and b.not_run is None]


def test_every_block_is_runnable_or_says_why():
    """No `bash` or `python` block is skipped silently, and each doc has runnable blocks."""
    for doc in DOCS:
        found = [b for b in blocks(doc) if b.lang in ("bash", "python")]
        assert runnable(doc), doc
        for block in found:
            assert block.not_run is None or len(block.not_run) > 20, f"{doc}:{block.line}: say why it is not run"
        assert all("[OUT]" not in b.text and "ALG INPUT" not in b.text for b in runnable(doc)), \
            f"{doc}: a runnable block holds a placeholder; make it a `text` block"


def _copy_repository(dest: Path) -> None:
    """The tracked and untracked-but-not-ignored files, as a fresh clone of this working tree holds them."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _run(block: Block, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    if block.lang == "python":
        argv = [str(Path(env["VIRTUAL_ENV"]) / "bin" / "python"), "-c", block.text]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", block.text]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200, check=False)


def _wait_for(url: str, timeout_s: float) -> bytes:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_documented_commands_run_verbatim(tmp_path):
    if not shutil.which("git") or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout to copy")
    repo, elsewhere = tmp_path / "clone", tmp_path / "guide"
    repo.mkdir()
    elsewhere.mkdir()
    _copy_repository(repo)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("BL_RESERVOIR_", "VIRTUAL_ENV", "DASK_"))}
    base.update(BL_RESERVOIR_CACHE=str(tmp_path / "cache"), NUMBA_CACHE_DIR=str(tmp_path / "numba"),
                PIP_DISABLE_PIP_VERSION_CHECK="1", COLUMNS="200")
    venv = repo / ".venv"
    activated = {**base, "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{base.get('PATH', '')}"}
    outputs = {}
    for doc, cwd in (("README.md", repo), ("docs/algorithms.md", elsewhere)):
        for n, block in enumerate(runnable(doc)):
            env = base if doc == "README.md" and n == 0 else activated   # the first block makes the venv
            done = _run(block, cwd, env)
            assert done.returncode == 0, (f"{doc}:{block.line} failed ({done.returncode}):\n{block.text}\n"
                                          f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
            outputs[(doc, block.line)] = done.stdout
    demo = outputs[("README.md", runnable("README.md")[0].line)]
    assert "browse them: bl-reservoir serve   then open http://127.0.0.1:8000" in demo
    assert (repo / "events" / "events.csv").is_file()   # the README's events command, on the demo's cadence

    # the demo's last advice, as printed: `bl-reservoir serve`, then open http://127.0.0.1:8000
    server = subprocess.Popen(["bl-reservoir", "serve"], cwd=repo, env=activated, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        home = _wait_for("http://127.0.0.1:8000/", 60).decode()
        deadline = time.monotonic() + 60
        while "cadence_0_ON_DEMO_TARGET" not in home and time.monotonic() < deadline:   # the start-up index
            time.sleep(0.5)
            home = _wait_for("http://127.0.0.1:8000/", 10).decode()
        assert "cadence_0_ON_DEMO_TARGET" in home
        assert "cadence_0_ON_DEMO_TARGET" in _wait_for("http://127.0.0.1:8000/cadences", 10).decode()
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stderr is not None:
            server.stderr.close()


if __name__ == "__main__":   # list what would run
    for doc in DOCS:
        for block in blocks(doc):
            state = "run" if block in runnable(doc) else f"skip ({block.not_run or block.lang or 'text'})"
            print(f"{doc}:{block.line} {block.lang or '-'}: {state}")
    sys.exit(0)
