"""Each storage backend seen through its own client (the file system, google-cloud-storage, boto3,
the folder an http server serves), never through the fsspec code under test: the shared storage
and fetch suites put objects and check what landed through these.

`make_backend` gives a fresh, empty place on one backend; the fixtures are in conftest.py.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

#: Bucket backends (contract C3) and input sources (`bl_reservoir.io.fetch`), by scheme.
BUCKET_BACKENDS = ("local", "gs", "s3")
INPUT_BACKENDS = ("http", "gs", "s3")


class Backend:
    """A fresh, empty place on one backend: `uri(key)` names an object, `keys()` lists them (relative)."""

    name = ""
    #: What `fetch_input` says of an object that is not there.
    missing = "no such object"

    def uri(self, key: str = "") -> str:
        raise NotImplementedError

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get(self, key: str) -> bytes:
        raise NotImplementedError

    def keys(self, prefix: str = "") -> set[str]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{self.name} {self.uri()}>"


class LocalBackend(Backend):
    """A local folder (a plain path, as users give one)."""

    name = "local"

    def __init__(self, root: Path):
        self.root = root

    def uri(self, key: str = "") -> str:
        return str(self.root / key) if key else str(self.root)

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def keys(self, prefix: str = "") -> set[str]:
        # os.walk, unlike Path.rglob, skips folders that vanish while it lists (a removal in progress).
        found = set()
        for folder, _, files in os.walk(self.root / prefix):
            found.update(Path(folder, name).relative_to(self.root).as_posix() for name in files)
        return found


class GcsBackend(Backend):
    """A fresh prefix in the emulator's bucket, read and written with google-cloud-storage."""

    name = "gs"

    def __init__(self, bucket: str):
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage as gcs

        self.bucket = bucket
        self.prefix = uuid.uuid4().hex[:12]
        self._bucket = gcs.Client(project="test", credentials=AnonymousCredentials()).bucket(bucket)

    def uri(self, key: str = "") -> str:
        return f"gs://{self.bucket}/{self.prefix}/{key}".rstrip("/")

    def put(self, key: str, data: bytes) -> None:
        self._bucket.blob(f"{self.prefix}/{key}").upload_from_string(data)

    def get(self, key: str) -> bytes:
        return self._bucket.blob(f"{self.prefix}/{key}").download_as_bytes()

    def keys(self, prefix: str = "") -> set[str]:
        blobs = self._bucket.list_blobs(prefix=f"{self.prefix}/{prefix}")
        return {b.name.removeprefix(f"{self.prefix}/") for b in blobs}


class S3Backend(Backend):
    """A fresh prefix in moto's bucket, read and written with boto3."""

    name = "s3"

    def __init__(self, bucket: str):
        import boto3

        self.bucket = bucket
        self.prefix = uuid.uuid4().hex[:12]
        self._client = boto3.client("s3")

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self.prefix}/{key}".rstrip("/")

    def put(self, key: str, data: bytes) -> None:
        self._client.put_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}", Body=data)

    def get(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self.bucket, Key=f"{self.prefix}/{key}")["Body"].read()

    def keys(self, prefix: str = "") -> set[str]:
        pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                        Prefix=f"{self.prefix}/{prefix}")
        return {o["Key"].removeprefix(f"{self.prefix}/") for page in pages for o in page.get("Contents", [])}


class HttpBackend(LocalBackend):
    """Files in the folder that `http.server` serves: written locally, named by URL."""

    name = "http"
    missing = "not found (404)"

    def __init__(self, root: Path, url: str):
        super().__init__(root)
        self.url = url

    def uri(self, key: str = "") -> str:
        return f"{self.url}/{key}"


def make_backend(name: str, request, tmp_path: Path) -> Backend:
    """A fresh, empty place on backend `name`; services come from the conftest fixtures, started on demand."""
    if name == "local":
        return LocalBackend(tmp_path / "bucket")
    if name == "http":
        return HttpBackend(*request.getfixturevalue("http_root"))
    if name == "gs":
        return GcsBackend(request.getfixturevalue("gcs_env").bucket)
    if name == "s3":
        return S3Backend(request.getfixturevalue("s3_env").bucket)
    raise ValueError(f"unknown backend {name!r}")
