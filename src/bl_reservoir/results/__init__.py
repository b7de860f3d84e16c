"""The standard results folder (contract C2): write it, complete it, read it back safely.

`manifest.json` is always written last, to a temporary name and then renamed: a folder with a
manifest is complete. Readers (`read_results`) touch only JSON, Parquet and `.npy` with
`allow_pickle=False`; the pickles exist for algorithms written against the original reservoir.
This process never unpickles anything: an algorithm's pickles are read by a subprocess of the
algorithm's own interpreter (`unpickle_command`), which hands back JSON and `.npy` copies. A
manifest that lists its `files` (as `storage.upload_dir` writes it) vouches only for those exact
files: readers treat a folder whose files do not match it as incomplete (`check_files`).
"""

from bl_reservoir.results.files import check_files, file_md5, mismatched_files, result_files
from bl_reservoir.results.folder import (
    FILES,
    HEADER_JSON,
    HEADER_PKL,
    INFO_PARQUET,
    INFO_PKL,
    KNOWN_SCHEMAS,
    MANIFEST,
    ORIGINAL_FILES,
    REQUIRED_COLUMNS,
    SAFE_FILES,
    SCHEMA,
    STAMPS,
    Results,
    build_manifest,
    complete_results,
    has_safe_copies,
    library_versions,
    read_results,
    utc_text,
    utcnow,
    write_manifest,
    write_results,
)
from bl_reservoir.results.pickles import UNPICKLE_TIMEOUT_S, read_unpickled, unpickle_command, unpickle_failure
from bl_reservoir.results.values import to_jsonable

__all__ = ["FILES", "HEADER_JSON", "HEADER_PKL", "INFO_PARQUET", "INFO_PKL", "KNOWN_SCHEMAS", "MANIFEST",
           "ORIGINAL_FILES", "REQUIRED_COLUMNS", "SAFE_FILES", "SCHEMA", "STAMPS", "UNPICKLE_TIMEOUT_S", "Results",
           "build_manifest", "check_files", "complete_results", "file_md5", "has_safe_copies", "library_versions",
           "mismatched_files", "read_results", "read_unpickled", "result_files", "to_jsonable", "unpickle_command",
           "unpickle_failure", "utc_text", "utcnow", "write_manifest", "write_results"]
