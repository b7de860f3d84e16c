"""The search's numba kernels compiled ahead of time, once per machine, into an extension module.

A fresh process pays 0.3-0.4 s for numba's first dispatch (its typing and lowering registries, the
NRT, loading each cached kernel) before any kernel runs: half of a one-coarse-channel search. The
same kernels compiled with `numba.pycc` for this machine's CPU import in about a millisecond, and
run the same code: numba compiles both from the same Python functions, flags and callees.

The module is built on first use into numba's cache folder for this package (`NUMBA_CACHE_DIR`,
else `__pycache__` beside this file, else `~/.cache/bl-reservoir/kernels`), named by a hash of the
kernel sources, numba's and llvmlite's install, numpy's and Python's versions and the CPU, so any
change builds a new one (10-20 s, under a file lock: concurrent processes wait for one build).
Building needs setuptools, a C and a C++ compiler and the Python headers, and `numba.pycc`, which
numba has marked "pending deprecation" since 0.57; only `_pycc` touches it. Without any of them
(pycc gone from numba included), every kernel runs through its JIT dispatcher as before, one
warning says why, and a marker file stops later processes from trying again.
`BL_RESERVOIR_KERNELS=jit` chooses the JIT path outright (CI runs the kernel tests both ways).

numba itself is imported only when something is compiled (`njit` here makes the dispatchers on
first need): with the compiled module, a search process never imports it (~0.5 s).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import logging
import numbers
import os
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from bl_reservoir import settings

log = logging.getLogger(__name__)

#: Modules that hold exported kernels: imported before the key is computed or the module built.
KERNEL_MODULES = ("bl_reservoir.dedoppler._taylor", "bl_reservoir.dedoppler._refine",
                  "bl_reservoir.dedoppler._hits", "bl_reservoir.dedoppler._noise", "bl_reservoir.dedoppler._desmear")
_KERNELS: dict[str, Kernel] = {}
_LAZY: list[LazyJit] = []
_LOCK = threading.RLock()


class LazyJit:
    """`numba.njit(**options)(py_func)`, made when first called or compiled: until then numba is not
    imported. Making one makes all (`_materialize`), so that kernels calling each other by their
    module globals find real dispatchers there."""

    def __init__(self, py_func: Callable[..., Any], options: dict[str, Any]):
        self.py_func, self.options, self.dispatcher = py_func, options, None
        functools.update_wrapper(self, py_func)
        _LAZY.append(self)

    def __call__(self, *args: Any) -> Any:
        if self.dispatcher is None:
            _materialize()
        return self.dispatcher(*args)


def njit(**options: Any) -> Callable[[Callable[..., Any]], LazyJit]:
    """`numba.njit` with the same options, imported and applied on first need (see `LazyJit`)."""
    return lambda py_func: LazyJit(py_func, options)


def _materialize() -> None:
    """Make every kernel's numba dispatcher, and put it in its module's globals in place of the lazy one."""
    with _LOCK:
        _import_kernel_modules()
        pending = [lazy for lazy in _LAZY if lazy.dispatcher is None]
        if not pending:
            return
        import numba

        for lazy in pending:
            lazy.dispatcher = numba.njit(**lazy.options)(lazy.py_func)
            if lazy.py_func.__globals__.get(lazy.__name__) is lazy:
                lazy.py_func.__globals__[lazy.__name__] = lazy.dispatcher


class Kernel:
    """A numba kernel called from Python. Runs the ahead-of-time build when there is one and the
    arguments fit its signature (the compiled wrapper does not check them: a wrong dtype would
    crash the process), else the JIT dispatcher."""

    def __init__(self, jit: LazyJit, signature: str):
        self.jit, self.signature, self.name = jit, signature, jit.__name__
        self._parameters = inspect.signature(jit.py_func)
        if _KERNELS.setdefault(self.name, self) is not self:
            raise ValueError(f"two exported kernels named {self.name}")
        functools.update_wrapper(self, jit.py_func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        bound = self._parameters.bind(*args, **kwargs)
        bound.apply_defaults()
        module = compiled_module()
        if module is not None and self._fits(bound.args):
            return getattr(module, self.name)(*bound.args)
        return self.jit(*bound.args)

    @functools.cached_property
    def _specs(self) -> list[tuple[Any, ...]]:
        """Per argument: ("array", dtype, ndim, needs C order) or ("int",) or ("float",), read from the
        signature's own text (numba's parser would import numba)."""
        specs = []
        inside = self.signature[self.signature.index("(") + 1:self.signature.rindex(")")]
        for name, dims in re.findall(r"(\w+)(\[[^\]]*\])?", inside):
            dtype = np.dtype(name)
            if dims:
                axes = dims[1:-1].split(",")
                specs.append(("array", dtype, len(axes), axes[-1].strip() == "::1"))
            else:
                specs.append(("int",) if np.issubdtype(dtype, np.integer) else ("float",))
        return specs

    def _fits(self, args: tuple[Any, ...]) -> bool:
        for arg, spec in zip(args, self._specs, strict=True):
            if spec[0] == "array":
                if not (isinstance(arg, np.ndarray) and arg.dtype == spec[1] and arg.ndim == spec[2]
                        and arg.flags.writeable and arg.flags.aligned and (arg.flags.c_contiguous or not spec[3])):
                    return False
            elif not isinstance(arg, numbers.Integral if spec[0] == "int" else numbers.Real):
                return False
        return True


def exported(signature: str) -> Callable[[Any], Kernel]:
    """Decorator over an `@njit` kernel called from Python: compile it ahead of time with this numba
    signature (layouts matter: `[::1]` is C order). Kernels other kernels call stay plain `@njit`."""
    return lambda jit: Kernel(jit, signature)


def compiled_module() -> ModuleType | None:
    """The ahead-of-time module of this machine, built on first use; None when it cannot be."""
    with _LOCK:
        return _load()


@functools.cache
def _load() -> ModuleType | None:
    if os.environ.get("NUMBA_DISABLE_JIT", "0").strip() not in ("", "0"):  # plain Python: nothing compiled
        return None
    if settings.kernels() == "jit":
        return None
    _import_kernel_modules()
    name = f"bl_dedoppler_kernels_{_key()}"
    try:
        path = _built(name, _cache_folder())
    except OSError as exc:  # no writable cache folder, a full disk: the JIT path needs neither
        log.warning("dedoppler kernels not compiled ahead of time (%s); numba's JIT runs them.", exc)
        return None
    if path is None:
        return None
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a damaged file must not stop the search
        log.warning("%s: cannot be imported (%s); numba's JIT runs the dedoppler kernels. Delete it to rebuild.",
                    path, " ".join(str(exc).split())[:200])
        return None
    return module


def _built(name: str, folder: Path) -> Path | None:
    """The module file `name` in `folder`, built first by whichever process gets there first; None when a
    build failed here (its `.failed` marker says why)."""
    path = folder / (name + importlib.machinery.EXTENSION_SUFFIXES[0])
    failed = path.with_suffix(".failed")
    if not path.exists() and not failed.exists():
        with _file_lock(folder / (name + ".lock")):
            if not path.exists() and not failed.exists():  # nobody built it while we waited
                try:
                    _build(name, path)
                except Exception as exc:  # noqa: BLE001 - any failure leaves the JIT path, which always works
                    reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                    failed.write_text(reason + "\n")
                    log.warning("dedoppler kernels not compiled ahead of time (%s); numba's JIT runs them, "
                                "with its slower start-up. Delete %s to try again.", reason, failed)
    return path if path.exists() else None


def _import_kernel_modules() -> None:
    """Import every module that declares kernels, so that all of them are registered."""
    for name in KERNEL_MODULES:
        importlib.import_module(name)


def _key() -> str:
    """Hash of all the compiled module depends on: kernel sources, installs, and the CPU it targets."""
    digest = hashlib.sha256()
    for name in (*KERNEL_MODULES, __name__):
        digest.update(Path(sys.modules[name].__file__).read_bytes())
    for part in (_installed("numba"), _installed("llvmlite"), np.__version__, sys.version, _cpu()):
        digest.update(part.encode())
    return digest.hexdigest()[:16]


def _installed(package: str) -> str:
    """Where a package is installed, and when: an upgrade or reinstall changes it. (Its version from
    importlib.metadata would cost a 30 ms scan of every installed distribution.)"""
    origin = importlib.util.find_spec(package).origin
    stat = os.stat(origin)
    return f"{origin}:{stat.st_size}:{stat.st_mtime_ns}"


def _cpu() -> str:
    """This CPU's model and feature flags, what `target_cpu = "host"` compiles for (from /proc/cpuinfo;
    elsewhere from LLVM, which imports llvmlite)."""
    with contextlib.suppress(OSError):
        text = Path("/proc/cpuinfo").read_text()
        model = re.search(r"^model name\s*:(.*)$", text, re.MULTILINE)
        flags = re.search(r"^(?:flags|Features)\s*:(.*)$", text, re.MULTILINE)
        if model and flags:
            return model.group(1).strip() + ":" + flags.group(1).strip()
    import llvmlite.binding as llvm

    return llvm.get_host_cpu_name() + ":" + llvm.get_host_cpu_features().flatten()


def _cache_folder() -> Path:
    """Where numba would cache this package's kernels: NUMBA_CACHE_DIR, else beside the source, else the
    user's cache."""
    cache_dir = os.environ.get("NUMBA_CACHE_DIR")
    for folder in (Path(cache_dir) / "bl_reservoir" if cache_dir else None, Path(__file__).parent / "__pycache__",
                   Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bl-reservoir" / "kernels"):
        if folder is None:
            continue
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
    raise OSError("no writable cache folder for the compiled kernels")


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive lock between processes (POSIX); elsewhere concurrent builds just race to one rename."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(name: str, path: Path) -> None:
    """Compile every exported kernel into the extension module `path` (see `_pycc.build`)."""
    from bl_reservoir.dedoppler import _pycc

    _materialize()
    _pycc.build(name, path, [(k.name, list(k._parameters.parameters), k.signature, k.jit.dispatcher)
                             for k in _KERNELS.values()])
    log.info("compiled %d dedoppler kernels ahead of time into %s", len(_KERNELS), path)
