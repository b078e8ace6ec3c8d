"""Build of the waterdrop._core extension (metadata lives in pyproject.toml).

librdkafka: by default the pinned version in vendor/librdkafka/ is built once
as a static, PIC library in ${XDG_CACHE_HOME:-~/.cache}/waterdrop/ and linked
into _core (see vendor/librdkafka/README.md).  WATERDROP_SYSTEM_LIBRDKAFKA=1
links a system librdkafka found by `pkg-config rdkafka` instead.

Other switches: WATERDROP_CYTHON_ANNOTATE=1 writes Cython's HTML annotation
next to the generated C (build/cython/).  WATERDROP_SANITIZE=address,undefined
(any of address, undefined, leak; or thread alone) compiles and links _core
with those sanitizers, -g -O1 -fno-omit-frame-pointer, in build/sanitize-<names>/
so that such a build and a normal one never reuse each other's objects
(ci/sanitize, ci/tsan, docs/reliability.md).  librdkafka itself stays
uninstrumented.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext as _build_ext

HERE = Path(__file__).resolve().parent
PACKAGE_DIR = Path("src") / "waterdrop"
# _core.pyx is one module written in parts (core/*.pxi, core/platform.h): a change to any of
# them rebuilds it (Cython tracks the includes for the C it generates; these, for the compile)
CORE_PARTS = sorted(str(p) for pattern in ("*.pxi", "*.h")
                    for p in (PACKAGE_DIR / "core").glob(pattern))
LICENSES_NAME = "LICENSES.librdkafka.txt"

CYTHON_DIRECTIVES = {
    "language_level": "3",
    "embedsignature": True,
    # "name(args)\n--\n\n" docstrings: CPython reads them as __text_signature__, so
    # inspect.signature() works on methods compiled with binding=False too
    "embedsignature.format": "clinic",
    "boundscheck": False,
    "wraparound": False,
    # the core is correct without the GIL (docs/free-threading.md): importing it on a
    # free-threaded CPython (3.13t+) leaves the GIL off
    "freethreading_compatible": True,
}


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


SANITIZERS = ("address", "undefined", "leak", "thread")


def _sanitizers() -> list[str]:
    """WATERDROP_SANITIZE, checked: a typo must not give an uninstrumented build silently."""
    if not _truthy("WATERDROP_SANITIZE"):
        return []
    value = os.environ["WATERDROP_SANITIZE"].strip().lower()
    names = sorted({n.strip() for n in value.split(",") if n.strip()})
    unknown = [n for n in names if n not in SANITIZERS]
    if unknown or not names:
        sys.stderr.write(
            f"\nerror: WATERDROP_SANITIZE={value!r}: expected a comma-separated list of "
            f"{', '.join(SANITIZERS)}\n")
        raise SystemExit(1)
    return names


def _sanitize_args(names: list[str]) -> tuple[list[str], list[str]]:
    """(compile args, link args) for _core built with the given sanitizers.

    Appended after Python's own CFLAGS, so -O1 wins over its -O3. -fno-sanitize-recover
    makes every UBSan finding fatal (ASan's always are), whatever UBSAN_OPTIONS says. The
    handle free list is off (-DWD_HANDLE_FREELIST=0): every handle is then a fresh allocation,
    freed at once, so a use after free of a handle is caught rather than hidden by reuse.
    ThreadSanitizer (``thread``, ci/tsan) keeps the free list: its lock is part of what it checks.
    """
    if "thread" in names and len(names) > 1:
        sys.stderr.write("\nerror: WATERDROP_SANITIZE=thread cannot be combined with another sanitizer\n")
        raise SystemExit(1)
    flag = "-fsanitize=" + ",".join(names)
    compile_args = [flag, "-fno-omit-frame-pointer", "-g", "-O1"]
    if "thread" not in names:
        compile_args.append("-DWD_HANDLE_FREELIST=0")
    if "undefined" in names:
        compile_args.append("-fno-sanitize-recover=undefined")
    return compile_args, [flag]


def _vendor_build():
    """vendor/librdkafka/build.py, imported by path (it is not a package)."""
    path = HERE / "vendor" / "librdkafka" / "build.py"
    spec = importlib.util.spec_from_file_location("_waterdrop_vendor_librdkafka", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class build_ext(_build_ext):
    """Cythonize, obtain librdkafka, link it in, ship its licence text."""

    def finalize_options(self):
        from Cython.Build import cythonize

        # Cythonized here rather than at import so that egg_info/sdist don't pay for it.
        self.distribution.ext_modules = cythonize(
            self.distribution.ext_modules,
            compiler_directives=CYTHON_DIRECTIVES,
            include_path=[str(PACKAGE_DIR)],
            build_dir=str(Path("build") / "cython"),
            annotate=_truthy("WATERDROP_CYTHON_ANNOTATE"),
            quiet=not self.verbose,
        )
        super().finalize_options()

    def run(self):
        rdk = _vendor_build()
        try:
            if _truthy("WATERDROP_SYSTEM_LIBRDKAFKA"):
                link, prefix = rdk.system_link_info(), None
            else:
                prefix = rdk.ensure_built()
                link = rdk.link_info(prefix)
        except rdk.LibrdkafkaError as exc:
            sys.stderr.write(f"\nerror: {exc}\n")
            raise SystemExit(1) from None
        if prefix is None:
            self._licenses = None
        else:
            self._licenses = Path(prefix) / rdk.LICENSES_RELPATH
            if sys.platform.startswith("linux"):
                # Keep librdkafka's symbols private to _core: another copy of
                # librdkafka in the process (confluent-kafka, say) must not
                # interpose on ours, nor ours on it.
                link["extra_link_args"].append("-Wl,--exclude-libs,ALL")
        for ext in self.extensions:
            if getattr(ext, "_waterdrop_linked", False):  # run() twice (editable installs)
                continue
            ext._waterdrop_linked = True
            ext.include_dirs = link["include_dirs"] + list(ext.include_dirs)
            ext.extra_objects = list(ext.extra_objects) + link["extra_objects"]
            ext.library_dirs = list(ext.library_dirs) + link["library_dirs"]
            ext.libraries = list(ext.libraries) + link["libraries"]
            ext.extra_compile_args = list(ext.extra_compile_args) + link["extra_compile_args"]
            ext.extra_link_args = list(ext.extra_link_args) + link["extra_link_args"]
        if _SANITIZERS:
            compile_args, link_args = _sanitize_args(_SANITIZERS)
            for ext in self.extensions:
                if getattr(ext, "_waterdrop_sanitized", False):
                    continue
                ext._waterdrop_sanitized = True
                ext.extra_compile_args = list(ext.extra_compile_args) + compile_args
                ext.extra_link_args = list(ext.extra_link_args) + link_args
        super().run()
        if self._licenses is not None:
            dest = self._licenses_dest()
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._licenses, dest)

    def _licenses_dest(self) -> Path:
        # Next to the built extension: build_lib for wheels, src/ for --inplace/editable.
        return Path(self.get_ext_fullpath("waterdrop._core")).parent / LICENSES_NAME

    def get_outputs(self):
        outputs = super().get_outputs()
        if not _truthy("WATERDROP_SYSTEM_LIBRDKAFKA"):
            outputs.append(str(self._licenses_dest()))
        return outputs


# A sanitized build gets its own build directory: setuptools skips compiling an extension
# whose built file is newer than its sources, so a shared build/ would hand one kind of
# build to the other's install.
_SANITIZERS = _sanitizers()
_OPTIONS = {"build": {"build_base": str(Path("build") / ("sanitize-" + "-".join(_SANITIZERS)))}} \
    if _SANITIZERS else {}

setup(
    options=_OPTIONS,
    ext_modules=[
        Extension(
            "waterdrop._core",
            sources=[str(PACKAGE_DIR / "_core.pyx")],
            # the parts _core.pyx includes, and core/platform.h (#include "core/platform.h")
            include_dirs=[str(PACKAGE_DIR)],
            depends=CORE_PARTS,
        ),
    ],
    cmdclass={"build_ext": build_ext},
)
