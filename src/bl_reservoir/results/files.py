"""The files of a results folder as listed: what a local folder holds (never following a link), their
MD5s, and whether a folder in a bucket holds exactly the files its manifest lists."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bl_reservoir.errors import InvalidResults


def result_files(folder: str | os.PathLike) -> dict[str, int]:
    """Every file under a local results folder: relative POSIX name -> bytes. Never follows a link:
    a symbolic link, or anything else that is not a plain file or folder, is `InvalidResults`."""
    root = Path(folder)
    found: dict[str, int] = {}

    def walk(path: Path, prefix: str) -> None:
        with os.scandir(path) as entries:
            for entry in entries:
                name = prefix + entry.name
                if entry.is_symlink():
                    raise InvalidResults(root, f"{name!r} is a symbolic link (to {os.readlink(entry.path)!r}): "
                                               "refused, never followed")
                if entry.is_dir(follow_symlinks=False):
                    walk(Path(entry.path), f"{name}/")
                elif entry.is_file(follow_symlinks=False):
                    found[name] = entry.stat(follow_symlinks=False).st_size
                else:
                    raise InvalidResults(root, f"{name!r} is not a plain file (a pipe, socket or device): refused")

    walk(root, "")
    return found


def file_md5(path: str | os.PathLike) -> str:
    """Hex MD5 of a local file (what `storage` lists in a manifest; GCS lists the same of each object)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _listed_md5(info: Mapping[str, Any]) -> str | None:
    """The content MD5 a listing gives for one object: GCS's `md5Hash`. (S3's ETag is an MD5 only for some
    uploads and encryption modes, so it is not trusted; a local listing gives none.)"""
    value = info.get("md5Hash")
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value).hex()
    except (binascii.Error, ValueError):
        return None


def check_files(fs: Any, root: str, manifest: Mapping[str, Any]) -> str | None:
    """Why the files under `root` do not match the `files` that `manifest` lists, else None.

    Each listed file must be there with its size, and its MD5 where the listing gives one (one
    listing, no download). A manifest that lists no `files` (written by `write_results`) vouches
    for whatever is there.
    """
    listed = manifest.get("files")
    if listed is None:
        return None
    if not isinstance(listed, Mapping):
        return "its files entry is not an object"
    return next(iter(mismatched_files(fs, root, listed).values()), None)


def mismatched_files(fs: Any, root: str, listed: Mapping[str, Any]) -> dict[str, str]:
    """Each of the `listed` files (name -> `{"size_bytes", "md5"}`) that is not so under `root`: name -> why."""
    root = root.rstrip("/")
    try:
        fs.invalidate_cache(root)  # a cached listing would describe the folder as it was
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        found = {}
    have = {fs._strip_protocol(path).rstrip("/")[len(root) + 1:]: info for path, info in found.items()}
    wrong = {}
    for name, want in listed.items():
        info = have.get(name)
        md5 = _listed_md5(info) if info is not None else None
        if info is None:
            wrong[name] = f"{name} is missing"
        elif not isinstance(want, Mapping) or info.get("size") != want.get("size_bytes"):
            wrong[name] = f"{name} holds {info.get('size')} bytes, not the {_get(want, 'size_bytes')} listed"
        elif md5 is not None and md5 != want.get("md5"):
            wrong[name] = f"{name} is not the file listed (MD5 {md5}, listed {_get(want, 'md5')})"
    return wrong


def _get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, Mapping) else None
