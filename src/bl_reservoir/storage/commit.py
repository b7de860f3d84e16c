"""How a results folder goes into a bucket without ever mixing with another upload to the same place:
each attempt uploads to its own `<dest>/.attempts/<id>/`, then commits under the destination's lock,
the manifest (which lists every file's size and MD5) last (the package docstring has the whole story).
"""

from __future__ import annotations

import calendar
import json
import logging
import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from bl_reservoir.errors import InvalidResults, UploadError
from bl_reservoir.io.fetch import obs_name, reason, retry, scheme
from bl_reservoir.results import MANIFEST, check_files, file_md5, mismatched_files, result_files
from bl_reservoir.storage.buckets import check_same_input, manifest_input, open_bucket, read_manifest, result_uri

log = logging.getLogger(__name__)

T = TypeVar("T")
UPLOAD_THREADS = 8

#: Inside a result folder: each attempt's own upload place, and the destination's commit lock.
ATTEMPTS, LOCK = ".attempts", "commit.lock"
#: A lock older than this is taken to belong to a dead process and is broken (seconds).
LOCK_LEASE_S = 600.0
#: How often a committer looks at a lock held by another one (seconds).
LOCK_POLL_S = 0.2
#: An attempt's upload place older than this belongs to a dead process and is removed (seconds).
STALE_ATTEMPT_S = 6 * 3600.0
#: Uploads of an attempt's files tried while the store lists one that did not arrive whole.
STAGE_ROUNDS = 3
#: Commits tried before giving up when other uploads keep mixing in (only where the lock is not enforced).
COMMIT_ROUNDS = 5


def upload_dir(bucket: str, results_dir: str | os.PathLike, dest: str | None = None, *,
               replace: bool = False) -> str:
    """Upload a complete results folder into a bucket and commit it; returns the result URI.

    `upload_dir("bl-scale", results_dir)` puts it at its C3 place (from its manifest). The files go
    up in parallel with retries to this attempt's own place, then are committed (module docstring):
    until then an old result at `dest` stays complete, and on failure nothing of this attempt is
    left and `UploadError` says why. A complete result of another input file with the same
    observation name is replaced only when `replace` is true.
    """
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise UploadError(os.fspath(results_dir), "results folder does not exist")
    dest = dest or _default_dest(bucket, results_dir)
    fs, root = open_bucket(dest)
    manifest = _listed_manifest(results_dir)
    attempt = _Attempt(fs, bucket, dest, root, results_dir, manifest)
    try:
        attempt.stage()
        with _commit_lock(attempt):
            committed = attempt.commit(replace)
    except UploadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any backend error becomes one line naming the URI
        raise UploadError(dest, f"upload failed ({reason(exc)})") from None
    finally:
        attempt.clean()
    log.info("uploaded %d files from %s to %s%s", len(manifest["files"]) + 1, results_dir, dest,
             "" if committed else " (another upload of the same input committed first)")
    return dest


def _default_dest(bucket: str, results_dir: Path) -> str:
    """C3 place for a folder whose manifest names its input and algorithm, else `<bucket>/<folder name>`."""
    try:
        manifest = json.loads((results_dir / MANIFEST).read_text())
        algorithm, source = manifest["algorithm"], manifest["input"]["uri"]
        if algorithm.get("package") and algorithm.get("name") and source:
            return result_uri(bucket, obs_name(source), algorithm["package"], algorithm["name"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return f"{str(bucket).rstrip('/')}/{results_dir.name}"


def _listed_manifest(results_dir: Path) -> dict[str, Any]:
    """The folder's manifest with `files`: each file to upload (hidden ones stay behind) with its size and MD5."""
    try:
        sizes = result_files(results_dir)
    except InvalidResults as exc:
        raise UploadError(exc.path, exc.reason) from None
    if MANIFEST not in sizes:
        raise UploadError(os.fspath(results_dir), "no manifest.json: not a complete results folder "
                                                  "(bl_reservoir.results.complete_results makes one)")
    try:
        manifest = json.loads((results_dir / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise UploadError(os.fspath(results_dir / MANIFEST), f"unreadable ({reason(exc)})") from None
    if not isinstance(manifest, dict):
        raise UploadError(os.fspath(results_dir / MANIFEST), "not a JSON object")
    names = sorted(n for n in sizes if n != MANIFEST and not any(part.startswith(".") for part in n.split("/")))
    manifest["files"] = {n: {"size_bytes": sizes[n], "md5": file_md5(results_dir / n)} for n in names}
    return manifest


def _attempt_id() -> str:
    """A new attempt's id: its UTC start (so a stale one is known by its name alone) and a random part."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def _attempt_age_s(name: str) -> float | None:
    try:
        return time.time() - calendar.timegm(time.strptime(name.split("-", 1)[0], "%Y%m%dT%H%M%SZ"))
    except ValueError:
        return None


class _Attempt:
    """One upload of a results folder: its own place under `<dest>/.attempts/`, and its commit."""

    def __init__(self, fs: Any, bucket: str, dest: str, root: str, results_dir: Path, manifest: dict[str, Any]):
        self.fs, self.bucket, self.dest, self.root, self.results_dir = fs, bucket, dest, root, results_dir
        self.manifest = manifest
        self.body = json.dumps(manifest, indent=2).encode()
        self.id = _attempt_id()
        self.local = scheme(dest) == "file"
        self.staging = f"{root}/{ATTEMPTS}/{self.id}"

    # -- step 1: upload to this attempt's own place ------------------------------------------

    def stage(self) -> None:
        names = list(self.manifest["files"])

        def put(name: str) -> None:
            remote = f"{self.staging}/{name}"
            if self.local:
                _local_makedirs(remote, lambda: self.fs.put_file(str(self.results_dir / name), remote))
            else:
                retry(f"upload of {remote}", lambda: self.fs.put_file(str(self.results_dir / name), remote))

        for _ in range(STAGE_ROUNDS):
            with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
                list(pool.map(put, names))  # list() re-raises the first failure
            # what arrived, as the store lists it: a file cut short on the way is sent again
            wrong = mismatched_files(self.fs, self.staging, self.manifest["files"])
            if not wrong:
                self._write(f"{self.staging}/{MANIFEST}", self.body)
                return
            log.info("%s: %s; sending again", self.dest, "; ".join(wrong.values()))
            names = list(wrong)
        raise UploadError(self.dest, f"upload failed ({next(iter(wrong.values()))} after {STAGE_ROUNDS} tries)")

    def _write(self, path: str, data: bytes) -> None:
        if self.local:
            tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
            _local_makedirs(tmp, lambda: Path(tmp).write_bytes(data))
            os.replace(tmp, path)  # a local file is seen while it is written: write aside, then rename
        else:
            retry(f"upload of {path}", lambda: self.fs.pipe_file(path, data))

    # -- step 2: commit, holding the lock ------------------------------------------------------

    def commit(self, replace: bool) -> bool:
        """Put the staged files in place, manifest last; True when this attempt's result is the one there.

        False when another attempt of the same input committed after it (both are the same result).
        """
        for round_ in range(COMMIT_ROUNDS):
            current = read_manifest(self.fs, self.root, self.dest)
            if current is not None and not replace and check_files(self.fs, self.root, current) is None:
                check_same_input(self.dest, current, manifest_input(self.manifest))
            if current is not None:
                _remove_if_there(self.fs, f"{self.root}/{MANIFEST}")
            with ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
                list(pool.map(self._place, self.manifest["files"]))
            self._place(MANIFEST)
            there, mismatch = self._settled()
            if mismatch is None:
                if there == self.manifest:
                    self._remove_unlisted()
                    return True
                if not replace:
                    check_same_input(self.dest, there, manifest_input(self.manifest))
                return False
            log.info("%s: another upload mixed in (%s; round %d): committing again", self.dest, mismatch, round_ + 1)
        raise UploadError(self.dest, f"other uploads to the same place kept mixing in ({COMMIT_ROUNDS} commits)")

    def _settled(self) -> tuple[dict[str, Any] | None, str | None]:
        """(manifest at `dest`, why its files do not match it) once they match, or once nobody has changed
        them for a while (a random 0.5-2 s, so that of two committers one goes again first, alone).

        Alone at `dest` (the lock held, as it is wherever the store honours it) the first look matches.
        """
        quiet_s, last, since = random.uniform(0.5, 2.0), None, time.monotonic()
        while True:
            there = read_manifest(self.fs, self.root, self.dest)
            mismatch = "no manifest.json" if there is None else check_files(self.fs, self.root, there)
            if mismatch is None:
                return there, None
            seen = (json.dumps(there, sort_keys=True), mismatch)
            if seen != last:
                last, since = seen, time.monotonic()
            elif time.monotonic() - since > quiet_s:
                return there, mismatch
            time.sleep(LOCK_POLL_S)

    def _place(self, name: str) -> None:
        source, target = f"{self.staging}/{name}", f"{self.root}/{name}"
        if self.local:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            tmp = f"{os.path.dirname(target)}/.{os.path.basename(target)}.{uuid.uuid4().hex[:8]}.tmp"
            try:
                os.link(source, tmp)  # free, and keeps the staged copy for another round
            except OSError:
                self.fs.copy(source, tmp)
            os.replace(tmp, target)
        else:
            retry(f"copy of {source} to {target}", lambda: self.fs.copy(source, target))

    def _remove_unlisted(self) -> None:
        """Files of an older result that this one does not have (its manifest does not list them)."""
        keep = {*self.manifest["files"], MANIFEST}
        for path in self.fs.find(self.root):
            name = self.fs._strip_protocol(path)[len(self.root) + 1:]
            if name not in keep and not name.startswith(f"{ATTEMPTS}/"):
                _remove_if_there(self.fs, path)

    # -- afterwards ------------------------------------------------------------------------------

    def clean(self) -> None:
        """Remove this attempt's place, and any other attempt's place left by a dead process."""
        try:
            for name in self._attempts():
                age = _attempt_age_s(name)
                if name == self.id or (age is not None and age > STALE_ATTEMPT_S):
                    self.fs.rm(f"{self.root}/{ATTEMPTS}/{name}", recursive=True)
        except Exception as exc:  # noqa: BLE001 - a leftover is swept by the next upload here
            log.warning("%s: could not remove the upload place of attempt %s (%s)", self.dest, self.id, reason(exc))
        if self.local:
            _prune_empty(Path(self.root) / ATTEMPTS, Path(open_bucket(self.bucket)[1]))

    def _attempts(self) -> list[str]:
        try:
            self.fs.invalidate_cache(f"{self.root}/{ATTEMPTS}")
            entries = self.fs.ls(f"{self.root}/{ATTEMPTS}", detail=False)
        except FileNotFoundError:
            return []
        names = (self.fs._strip_protocol(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)
        return [n for n in names if n != LOCK]


def _remove_if_there(fs: Any, path: str) -> None:
    """Remove one file, with retries; one already gone (another upload removed it) is fine."""
    try:
        retry(f"removal of {path}", lambda: fs.rm_file(path))
    except FileNotFoundError:
        pass


def _prune_empty(folder: Path, bucket: Path) -> None:
    """Remove `folder` and its parents inside `bucket` while they are empty (a failed upload leaves no folder)."""
    for path in (folder, *folder.parents):
        if path == bucket or bucket not in path.parents:
            return
        try:
            path.rmdir()
        except OSError:
            return


def _local_makedirs(path: str, make: Callable[[], T]) -> T:
    """`make()` after creating `path`'s folder, again if another upload's clean-up removed it meanwhile."""
    for attempt in range(3):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            return make()
        except FileNotFoundError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


@contextmanager
def _commit_lock(attempt: _Attempt) -> Iterator[None]:
    """Hold `<dest>/.attempts/commit.lock` while committing: created only if absent (a hard link locally;
    `If-None-Match` on S3, `ifGenerationMatch=0` on GCS), broken when older than LOCK_LEASE_S.

    A store that ignores the condition (the GCS emulator) makes it advisory: the commit's own check
    still ends with one consistent result.
    """
    fs, path = attempt.fs, f"{attempt.root}/{ATTEMPTS}/{LOCK}"
    while True:
        try:
            _create_exclusive(fs, path, json.dumps({"attempt": attempt.id, "since": time.time()}).encode(),
                              attempt.local)
            break
        except FileExistsError:
            held, raw = _lock_age_s(fs, path)
            if held is not None and held > LOCK_LEASE_S and _read_or_none(fs, path) == raw:
                # (the same lock still: not one another waiter has just broken and taken meanwhile)
                log.warning("%s: breaking a commit lock held for %.0f s (its process died)", attempt.dest, held)
                _remove_if_there(fs, path)
            time.sleep(LOCK_POLL_S * random.uniform(0.5, 1.5))
    try:
        yield
    finally:
        try:
            if json.loads(fs.cat_file(path)).get("attempt") == attempt.id:
                fs.rm_file(path)
        except (OSError, ValueError, AttributeError):
            pass
        except Exception as exc:  # noqa: BLE001 - a lock left behind is broken after its lease
            log.warning("%s: could not release the commit lock (%s)", attempt.dest, reason(exc))


def _create_exclusive(fs: Any, path: str, body: bytes, local: bool) -> None:
    """Write `body` at `path` only if nothing is there; FileExistsError otherwise."""
    if not local:
        def create() -> bool:
            try:
                fs.pipe_file(path, body, mode="create")
            except FileExistsError:
                return False
            return True

        if not retry(f"creation of {path}", create):
            raise FileExistsError(path)
        return
    # Written aside, then linked in: the lock appears whole, or not at all (link fails if one is there).
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    _local_makedirs(tmp, lambda: Path(tmp).write_bytes(body))
    try:
        os.link(tmp, path)
    finally:
        os.unlink(tmp)


def _lock_age_s(fs: Any, path: str) -> tuple[float | None, bytes | None]:
    """(seconds since the lock at `path` was taken, by its own record; its bytes): (None, None) when gone."""
    raw = _read_or_none(fs, path)
    if raw is None:
        return None, None
    try:
        return time.time() - float(json.loads(raw)["since"]), raw
    except (ValueError, KeyError, TypeError):
        return LOCK_LEASE_S + 1, raw  # not ours to read: locks appear whole, so a stranger's garbage


def _read_or_none(fs: Any, path: str) -> bytes | None:
    try:
        return fs.cat_file(path)
    except FileNotFoundError:
        return None
