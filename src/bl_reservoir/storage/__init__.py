"""Buckets (contract C3), behind fsspec: where result folders go up, and how they come down.

Buckets are local folders, `gs://` or `s3://`. A result folder goes to
`<bucket>/<obs_name>/<alg_package>/<alg_name>/` in two steps (docs/formats.md, "Bucket layout"):

1. each attempt uploads its files to its own place, `<dest>/.attempts/<attempt id>/`, which no
   reader lists; the result already at `<dest>` stays complete and readable meanwhile;
2. then it commits, holding the destination's lock (`.attempts/commit.lock`, created only if
   absent): the old `manifest.json` goes, the files are copied into place inside the bucket, and
   the new `manifest.json` comes last. It lists every file with its size and MD5, so readers
   (`is_complete`, `results.read_results`, the web) treat a folder whose files do not match it as
   incomplete, and the committer checks what it left and tries again if another upload mixed in.

A complete result of another input with the same observation name (`x.h5` after `x.fil`) is not
replaced unless asked. Transient errors are retried with exponential backoff. Inputs are fetched
by `bl_reservoir.io.fetch`, whose filesystems and retry policy this module shares.
"""

from bl_reservoir.storage.buckets import (
    BUCKET_SCHEMES,
    CADENCES,
    RESERVED,
    SENSITIVITY,
    check_bucket,
    check_same_input,
    events_uri,
    input_file_name,
    is_complete,
    open_bucket,
    read_manifest,
    result_uri,
)
from bl_reservoir.storage.commit import UPLOAD_THREADS, upload_dir

__all__ = ["BUCKET_SCHEMES", "CADENCES", "RESERVED", "SENSITIVITY", "check_bucket",
           "check_same_input", "events_uri", "input_file_name", "is_complete", "open_bucket", "read_manifest",
           "result_uri", "UPLOAD_THREADS", "upload_dir"]
