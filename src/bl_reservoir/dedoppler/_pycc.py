"""The one place that touches `numba.pycc` (pending deprecation since numba 0.57): build an extension
module of kernels compiled ahead of time for this CPU. When pycc goes, importing it fails here, the
build is marked failed, and the search runs every kernel on numba's JIT (`_aot`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

#: What `build` compiles: (name, parameter names, numba signature, the kernel's JIT dispatcher).
Export = tuple[str, Sequence[str], str, Callable[..., Any]]


def build(name: str, path: Path, exports: Sequence[Export]) -> None:
    """Compile `exports` into the extension module `path` (module name `name`), for this CPU, with
    wrappers that release the GIL.

    Each kernel is exported through a one-line trampoline that calls its dispatcher, so it keeps its
    own flags (fastmath, nogil) exactly as the JIT compiles it.
    """
    with warnings.catch_warnings():  # pycc is "pending deprecation" since numba 0.57; the JIT is the fallback
        warnings.simplefilter("ignore")
        from numba.pycc import CC, compiler

    with tempfile.TemporaryDirectory(dir=path.parent) as tmp, _exports_release_gil(compiler):
        cc = CC(name)
        cc.output_dir, cc.output_file = tmp, path.name
        cc.target_cpu = "host"
        cc.verbose = False
        for kernel_name, parameters, signature, dispatcher in exports:
            params = ", ".join(parameters)
            namespace = {"_kernel": dispatcher}
            exec(f"def {kernel_name}({params}):\n    return _kernel({params})\n", namespace)  # noqa: S102
            cc.export(kernel_name, signature)(namespace[kernel_name])
        cc.compile()
        os.replace(Path(tmp) / path.name, path)


@contextlib.contextmanager
def _exports_release_gil(compiler: ModuleType):
    """pycc's exported wrappers hold the GIL by default; the search runs kernels on threads (read-ahead,
    `--threads`), so compile them as `nogil=True` JIT wrappers are."""
    base = compiler.Flags

    class Flags(base):
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.release_gil = True

    compiler.Flags = Flags
    try:
        yield
    finally:
        compiler.Flags = base
