#!/usr/bin/env python3
"""Obtain, verify and build the pinned librdkafka for waterdrop._core.

The pin lives next to this file: VERSION, SHA256 (of the upstream source
tarball) and DEBIAN_VERSION (the Debian source package that carries the same
tarball as its .orig.tar.gz).  See README.md beside this file.

Used two ways:

* imported by setup.py (``ensure_built()`` then ``link_info(prefix)``), and
* standalone: ``python vendor/librdkafka/build.py`` builds (or reuses) the
  static library and prints its prefix on stdout.  ``--help`` lists the rest.

Nothing here writes into the checkout.  The tarball and the built prefix live
in ``${XDG_CACHE_HOME:-~/.cache}/waterdrop/``; the build itself runs in a
temporary directory and the finished prefix is renamed into place, so an
interrupted build never leaves a half-built prefix behind.

Environment:

WATERDROP_LIBRDKAFKA_TARBALL
    Path of the librdkafka source tarball to use (checked against SHA256).
WATERDROP_LIBRDKAFKA_NO_DOWNLOAD=1
    Do not try the network (upstream release or Debian's archive); use only
    the given tarball or the cache.
WATERDROP_LIBRDKAFKA_CONFIGURE_FLAGS
    Extra flags for librdkafka's ./configure (shell-quoted), e.g.
    "--disable-curl".  They are part of the cache key.
WATERDROP_VENDOR_DEPS
    Which of librdkafka's dependencies to build from the pinned sources in
    vendor/deps instead of using the system's: unset or "auto" (those whose
    headers the compiler cannot see), "none" (never: a missing one stops the
    build with the package to install), "all", or a comma list of zlib, lz4,
    zstd, openssl, curl.
XDG_CACHE_HOME
    Where the cache lives (default ~/.cache).
CC, CFLAGS, CPPFLAGS, LDFLAGS
    Honoured by librdkafka's configure; part of the cache key.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Iterator

HERE = Path(__file__).resolve().parent


def _pin(name: str) -> str:
    return (HERE / name).read_text(encoding="utf-8").split()[0].strip()


VERSION = _pin("VERSION")
SHA256 = _pin("SHA256").lower()
DEBIAN_VERSION = _pin("DEBIAN_VERSION")

# Bump when a change to this script changes what gets built, so that old
# cached prefixes are not reused.
RECIPE_REVISION = 1

# GitHub's tag tarball in its "legacy" form (top directory
# confluentinc-librdkafka-<short sha>): this is the exact file Debian's uscan
# fetches and ships as librdkafka_<version>.orig.tar.gz, so one sha256 covers
# both sources.
UPSTREAM_URLS = (
    "https://codeload.github.com/confluentinc/librdkafka/legacy.tar.gz/refs/tags/v{version}",
    "https://api.github.com/repos/confluentinc/librdkafka/tarball/refs/tags/v{version}",
)
UPSTREAM_TIMEOUT = 15  # seconds per connection attempt

# Debian suites that may carry DEBIAN_VERSION.  The archive URI is taken from
# the machine's own apt sources; only the suite names are ours.
DEBIAN_SUITES = ("sid", "forky", "trixie-backports")

# librdkafka's dependencies: (configure feature, header that shows the system has it,
# the library in vendor/deps that replaces it, Debian package, RPM package).  Every one
# is forced on: from the system when the compiler sees its header, otherwise built from
# the pinned source in vendor/deps (WATERDROP_VENDOR_DEPS), so no build ever lacks a
# codec, TLS or OIDC.  Cyrus SASL (GSSAPI/Kerberos) cannot be built from vendor/deps
# (vendor/deps/README.md): without its headers a Linux build stops and names the package.
# PLAIN, SCRAM and OAUTHBEARER are librdkafka's own code and need nothing.
FEATURES = (
    ("zlib", "zlib.h", "zlib", "zlib1g-dev", "zlib-devel"),
    ("zstd", "zstd.h", "zstd", "libzstd-dev", "libzstd-devel"),
    ("ssl", "openssl/ssl.h", "openssl", "libssl-dev", "openssl-devel"),
    ("gssapi", "sasl/sasl.h", None, "libsasl2-dev", "cyrus-sasl-devel"),
    ("curl", "curl/curl.h", "curl", "libcurl4-openssl-dev", "libcurl-devel"),  # OAUTHBEARER OIDC
    ("lz4-ext", "lz4frame.h", "lz4", "liblz4-dev", "lz4-devel"),
)
WHAT_FOR = {"zlib": "gzip", "zstd": "zstd", "ssl": "TLS", "gssapi": "Cyrus SASL: GSSAPI/Kerberos",
            "curl": "OAUTHBEARER OIDC", "lz4-ext": "lz4"}
VENDORABLE = ("zlib", "lz4", "zstd", "openssl", "curl")  # vendor/deps/build_deps.py's ORDER

# builtin.features every build must report (shared/API.md's promise), and the ones a
# configure feature adds when it is on.
REQUIRED_FEATURES = ("gzip", "snappy", "lz4", "zstd", "ssl", "sasl_plain", "sasl_scram",
                     "sasl_oauthbearer")
FEATURE_GIVES = {"gssapi": ("sasl_gssapi",), "curl": ("oidc",)}
# Makefile.config's BUILT_WITH -> builtin.features, for when the probe cannot run (cross builds)
BUILT_WITH_FEATURES = {
    "ZLIB": "gzip", "SNAPPY": "snappy", "SSL": "ssl", "SASL_CYRUS": "sasl_gssapi",
    "SASL_SCRAM": "sasl_scram", "SASL_OAUTHBEARER": "sasl_oauthbearer", "ZSTD": "zstd",
    "OAUTHBEARER_OIDC": "oidc",
}

TARBALL_NAME = f"librdkafka-{VERSION}.tar.gz"
LICENSES_RELPATH = Path("share/doc/librdkafka/LICENSES.txt")
BUILD_INFO_RELPATH = Path("share/waterdrop/build.json")
STATIC_LIB_RELPATH = Path("lib/librdkafka.a")
HEADER_RELPATH = Path("include/librdkafka/rdkafka.h")


class LibrdkafkaError(RuntimeError):
    """The pinned librdkafka could not be obtained or built."""


def log(msg: str) -> None:
    print(f"[waterdrop: librdkafka {VERSION}] {msg}", file=sys.stderr, flush=True)


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


# --------------------------------------------------------------------------
# cache

def cache_root() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "waterdrop"


def _ensure_cache_root() -> Path:
    root = cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LibrdkafkaError(
            f"cannot create the build cache {root} ({exc}); "
            "set XDG_CACHE_HOME to a writable directory"
        ) from exc
    return root


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Exclusive lock so that parallel builds don't build the same thing twice."""
    import fcntl

    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for another build holding {path}")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _install_into_cache(src: Path, root: Path) -> Path:
    """Copy a verified tarball into the cache atomically; return the cached path."""
    dest = root / TARBALL_NAME
    if src.resolve() == dest.resolve():
        return dest
    fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{TARBALL_NAME}.", suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        if sha256_of(Path(tmp)) != SHA256:  # paranoia: the copy is what we build
            raise LibrdkafkaError(f"copy of {src} into the cache changed on the way")
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return dest


# --------------------------------------------------------------------------
# sources of the tarball, in order

def _from_user(tried: list[str]) -> Path | None:
    given = os.environ.get("WATERDROP_LIBRDKAFKA_TARBALL", "").strip()
    if not given:
        tried.append("WATERDROP_LIBRDKAFKA_TARBALL: not set")
        return None
    path = Path(given).expanduser()
    if not path.is_file():
        raise LibrdkafkaError(f"WATERDROP_LIBRDKAFKA_TARBALL={given}: no such file")
    got = sha256_of(path)
    if got != SHA256:
        raise LibrdkafkaError(
            f"WATERDROP_LIBRDKAFKA_TARBALL={given} has sha256 {got}, "
            f"but librdkafka {VERSION} is pinned to {SHA256}"
        )
    log(f"using the tarball given in WATERDROP_LIBRDKAFKA_TARBALL: {path}")
    return path


def _from_cache(root: Path, tried: list[str]) -> Path | None:
    path = root / TARBALL_NAME
    if not path.is_file():
        tried.append(f"cache {path}: absent")
        return None
    got = sha256_of(path)
    if got != SHA256:
        log(f"ignoring {path}: sha256 {got} is not the pinned {SHA256}")
        tried.append(f"cache {path}: wrong sha256 {got}, removed")
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    log(f"using the cached tarball {path}")
    return path


def _from_upstream(workdir: Path, tried: list[str]) -> Path | None:
    for template in UPSTREAM_URLS:
        url = template.format(version=VERSION)
        dest = workdir / "upstream.tar.gz"
        log(f"trying the upstream release {url}")
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "waterdrop-build"})
            with urllib.request.urlopen(req, timeout=UPSTREAM_TIMEOUT) as resp, open(dest, "wb") as out:
                shutil.copyfileobj(resp, out)
        except Exception as exc:  # noqa: BLE001 - any failure means "next source"
            tried.append(f"upstream {url}: {exc}")
            continue
        got = sha256_of(dest)
        if got != SHA256:
            tried.append(f"upstream {url}: wrong sha256 {got}")
            continue
        return dest
    return None


def _split_deb822(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    key = None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if cur:
                stanzas.append(cur)
            cur, key = {}, None
            continue
        if raw[0] in " \t" and key is not None:
            cur[key] += "\n" + raw.strip()
            continue
        if ":" in raw:
            key, _, value = raw.partition(":")
            key = key.strip().lower()
            cur[key] = value.strip()
    if cur:
        stanzas.append(cur)
    return stanzas


def _parse_one_line_source(line: str) -> tuple[str, str, str] | None:
    """'deb [opts] URI suite comps...' -> (type, uri, suite)."""
    line = line.split("#", 1)[0].strip()
    if not line:
        return None
    kind, _, rest = line.partition(" ")
    rest = rest.strip()
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            return None
        rest = rest[end + 1:].strip()
    parts = rest.split()
    if len(parts) < 2:
        return None
    return kind, parts[0], parts[1]


def _is_security_suite(suite: str) -> bool:
    return suite.endswith("-security") or suite.endswith("/updates")


def debian_archive_uris(etc: Path = Path("/etc/apt")) -> list[str]:
    """The Debian archive URIs this machine already uses (security archives excluded)."""
    entries: list[tuple[str, str]] = []  # (uri, suite)
    for path in sorted((etc / "sources.list.d").glob("*.sources")):
        with contextlib.suppress(OSError):
            for st in _split_deb822(path.read_text(encoding="utf-8", errors="replace")):
                if st.get("enabled", "yes").lower() == "no":
                    continue
                types = st.get("types", "").split()
                if "deb" not in types and "deb-src" not in types:
                    continue
                for uri in st.get("uris", "").split():
                    for suite in st.get("suites", "").split():
                        entries.append((uri, suite))
    lists = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
    for path in lists:
        with contextlib.suppress(OSError):
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                parsed = _parse_one_line_source(line)
                if parsed and parsed[0] in ("deb", "deb-src"):
                    entries.append((parsed[1], parsed[2]))
    uris: list[str] = []
    for uri, suite in entries:
        if _is_security_suite(suite) or not re.match(r"^(https?|ftp|file|mirror\+\w+):", uri):
            continue
        uri = uri.rstrip("/")
        if uri not in uris:
            uris.append(uri)
    return uris


def _from_debian(workdir: Path, tried: list[str]) -> Path | None:
    label = f"Debian source package librdkafka={DEBIAN_VERSION}"
    apt_get = shutil.which("apt-get")
    if not apt_get:
        tried.append(f"{label}: apt-get not found")
        return None
    uris = debian_archive_uris()
    if not uris:
        tried.append(f"{label}: no Debian archive found in /etc/apt sources")
        return None
    apt = workdir / "apt"
    for sub in ("lists/partial", "cache/archives/partial", "download"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    source_list = apt / "sources.list"
    # [trusted=yes]: the trust anchor is the pinned sha256 of the one file we
    # use, checked below; the machine's keyring may be too old to verify the
    # Release files of newer suites.
    source_list.write_text(
        "".join(f"deb-src [trusted=yes] {uri} {suite} main\n" for uri in uris for suite in DEBIAN_SUITES),
        encoding="utf-8",
    )
    opts = [
        "-o", f"Dir::Etc::SourceList={source_list}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::State::Lists={apt / 'lists'}",
        "-o", f"Dir::Cache={apt / 'cache'}",
        "-o", "Acquire::Languages=none",
        "-o", "Acquire::Retries=1",
        "-o", "Acquire::http::Timeout=30",
        "-o", "Acquire::https::Timeout=30",
    ]
    if os.geteuid() == 0:
        # Our private temp dirs are not writable by apt's _apt sandbox user.
        opts += ["-o", "APT::Sandbox::User=root"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C")
    log(f"trying {label} from {', '.join(uris)} (suites {', '.join(DEBIAN_SUITES)})")
    # Some suites/URIs may not exist; update fetches what it can, so its exit
    # status alone decides nothing.
    upd = subprocess.run([apt_get, *opts, "update"], env=env, capture_output=True, text=True, timeout=900)
    src = subprocess.run(
        [apt_get, *opts, "source", "--download-only", f"librdkafka={DEBIAN_VERSION}"],
        cwd=apt / "download", env=env, capture_output=True, text=True, timeout=900,
    )
    if src.returncode != 0:
        why = (src.stderr or src.stdout).strip().splitlines()[-1:] or ["failed"]
        upd_errs = [l for l in (upd.stdout + upd.stderr).splitlines() if l.startswith(("E:", "W:", "Err:"))]
        detail = why[0] + (f" (apt-get update: {'; '.join(upd_errs[:3])})" if upd_errs else "")
        tried.append(f"{label}: {detail}")
        return None
    found = sorted((apt / "download").glob(f"librdkafka_{VERSION}.orig.tar.*"))
    if not found:
        tried.append(f"{label}: downloaded, but no librdkafka_{VERSION}.orig.tar.* in it")
        return None
    got = sha256_of(found[0])
    if got != SHA256:
        tried.append(f"{label}: {found[0].name} has wrong sha256 {got}")
        return None
    return found[0]


def obtain_tarball() -> Path:
    """Return the path of a verified source tarball, in the cache when possible."""
    root = _ensure_cache_root()
    tried: list[str] = []
    path = _from_user(tried)
    if path is not None:
        return _install_into_cache(path, root)
    path = _from_cache(root, tried)
    if path is not None:
        return path
    if _truthy("WATERDROP_LIBRDKAFKA_NO_DOWNLOAD"):
        tried.append("upstream release and Debian archive: skipped (WATERDROP_LIBRDKAFKA_NO_DOWNLOAD is set)")
    else:
        with tempfile.TemporaryDirectory(prefix="waterdrop-librdkafka-fetch-") as tmp:
            for source in (_from_upstream, _from_debian):
                try:
                    path = source(Path(tmp), tried)
                except Exception as exc:  # noqa: BLE001
                    tried.append(f"{source.__name__}: {exc}")
                    path = None
                if path is not None:
                    log(f"got {path.name}, sha256 verified")
                    return _install_into_cache(path, root)
    raise LibrdkafkaError(
        f"could not obtain the librdkafka {VERSION} source tarball "
        f"(sha256 {SHA256}). Tried, in order:\n"
        + "".join(f"  - {t}\n" for t in tried)
        + "To supply it, download the librdkafka v"
        + VERSION
        + " tag tarball from GitHub (confluentinc/librdkafka, the /tarball/ form), or Debian's "
        + f"librdkafka_{VERSION}.orig.tar.gz (source package librdkafka {DEBIAN_VERSION}), then either\n"
        + "  export WATERDROP_LIBRDKAFKA_TARBALL=/path/to/that/file\n"
        + f"or copy it to {root / TARBALL_NAME}\n"
        + "and build again. Or set WATERDROP_SYSTEM_LIBRDKAFKA=1 to use a system librdkafka via pkg-config."
    )


# --------------------------------------------------------------------------
# configure flags and the cache key

def _cc() -> list[str]:
    if os.environ.get("CC"):
        return shlex.split(os.environ["CC"])
    for name in ("cc", "gcc", "clang"):
        if shutil.which(name):
            return [name]
    raise LibrdkafkaError("no C compiler found (cc, gcc, clang); install one (Debian: build-essential)")


def have_header(header: str) -> bool:
    flags = shlex.split(os.environ.get("CPPFLAGS", "")) + shlex.split(os.environ.get("CFLAGS", ""))
    try:
        res = subprocess.run(
            [*_cc(), *flags, "-E", "-x", "c", "-o", os.devnull, "-"],
            input=f"#include <{header}>\n", capture_output=True, text=True, timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def _vendor_choice() -> str | set[str]:
    """WATERDROP_VENDOR_DEPS: "auto", "none", or the set of libraries to build from vendor/deps."""
    raw = os.environ.get("WATERDROP_VENDOR_DEPS", "").strip().lower()
    if raw in ("", "auto"):
        return "auto"
    if raw in ("none", "0", "no", "off", "false"):
        return "none"
    if raw == "all":
        return set(VENDORABLE)
    names = {n.strip() for n in raw.split(",") if n.strip()}
    unknown = sorted(names - set(VENDORABLE))
    if unknown:
        raise LibrdkafkaError(
            f"WATERDROP_VENDOR_DEPS={raw!r}: unknown {', '.join(unknown)}; expected auto, none, "
            f"all, or a comma list of {', '.join(VENDORABLE)}"
        )
    return names


def _user_disabled() -> set[str]:
    """Features turned off on purpose in WATERDROP_LIBRDKAFKA_CONFIGURE_FLAGS."""
    return {
        m.group(1)
        for tok in shlex.split(os.environ.get("WATERDROP_LIBRDKAFKA_CONFIGURE_FLAGS", ""))
        if (m := re.match(r"^--disable-(.+)$", tok))
    }


def _install_hint(items: list[tuple[str, str, str]]) -> str:
    """Lines naming the Debian and RPM package for each (header, deb, rpm)."""
    return "".join(
        f"  - {header}: Debian/Ubuntu `apt-get install {deb}`, Fedora/RHEL `dnf install {rpm}`\n"
        for header, deb, rpm in items
    )


class Plan:
    """What to build: librdkafka's configure flags and the libraries vendor/deps supplies."""

    def __init__(self, flags: list[str], vendored: list[str]):
        self.flags = flags
        self.vendored = vendored  # in vendor/deps' build order

    def required_features(self) -> list[str]:
        """builtin.features the result must report: the promised set, and what the flags add."""
        out = list(REQUIRED_FEATURES)
        for feature, gives in FEATURE_GIVES.items():
            if f"--enable-{feature}" in self.flags:
                out += [g for g in gives if g not in out]
        return out


def plan() -> Plan:
    """Decide, for each dependency, system or vendor/deps; stop if neither can supply one.

    A dependency whose header the compiler sees comes from the system; otherwise it is
    built from vendor/deps (unless WATERDROP_VENDOR_DEPS=none).  What neither can supply
    stops the build with the package to install: nothing is ever left out silently.
    """
    choice = _vendor_choice()
    disabled = _user_disabled()
    vendored: set[str] = set(choice) if isinstance(choice, set) else set()
    seen: dict[str, bool] = {}
    missing: list[tuple[str, str, str]] = []
    for feature, header, lib, deb, rpm in FEATURES:
        if feature in disabled or lib in vendored:
            continue
        seen[header] = have_header(header)
        if seen[header]:
            continue
        if lib is not None and choice != "none":
            vendored.add(lib)
        elif lib is None and not sys.platform.startswith("linux"):
            log(f"no {header} (Cyrus SASL): building without GSSAPI/Kerberos on this platform")
        else:
            missing.append((f"{header} ({WHAT_FOR[feature]})", deb, rpm))
    if missing:
        raise LibrdkafkaError(
            "librdkafka needs development files this machine does not have"
            + (" (WATERDROP_VENDOR_DEPS=none: nothing is built from vendor/deps)" if choice == "none"
               else ", and vendor/deps cannot build them")
            + ":\n" + _install_hint(missing)
            + "Install them and build again"
            + (", or unset WATERDROP_VENDOR_DEPS." if choice == "none" else
               ", or leave a feature out on purpose, e.g. "
               "WATERDROP_LIBRDKAFKA_CONFIGURE_FLAGS=--disable-gssapi (no Kerberos).")
        )
    if vendored & {"openssl", "curl"}:
        # curl is built against the vendored OpenSSL and zlib, and one OpenSSL per process
        vendored |= {"openssl", "curl", "zlib"}
    flags = []
    for feature, header, lib, _deb, _rpm in FEATURES:
        if feature in disabled:
            continue  # the user's own --disable-X follows
        on = lib in vendored or (seen[header] if header in seen else have_header(header))
        flags.append(f"--{'enable' if on else 'disable'}-{feature}")
    flags += shlex.split(os.environ.get("WATERDROP_LIBRDKAFKA_CONFIGURE_FLAGS", ""))
    return Plan(flags, [n for n in VENDORABLE if n in vendored])


def configure_flags() -> list[str]:
    """Flags for ./configure (without --prefix); see plan()."""
    return plan().flags


def _build_deps_module():
    """vendor/deps/build_deps.py, imported by path (it is not a package)."""
    import importlib.util

    path = HERE.parent / "deps" / "build_deps.py"
    if not path.is_file():
        raise LibrdkafkaError(f"{path} is missing: vendor/deps is needed to build librdkafka's dependencies")
    spec = importlib.util.spec_from_file_location("_waterdrop_vendor_build_deps", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _pins_of(names: list[str]) -> dict[str, str]:
    pins = json.loads((HERE.parent / "deps" / "pins.json").read_text(encoding="utf-8"))
    return {n: pins[n]["sha256"] for n in names}


def _env_key() -> dict[str, str]:
    return {k: os.environ.get(k, "") for k in ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS")}


def deps_prefix_for(p: Plan) -> Path | None:
    """Where vendor/deps' libraries for this plan are built (None: nothing vendored)."""
    if not p.vendored:
        return None
    material = {"pins": _pins_of(p.vendored), "env": _env_key()}
    key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:10]
    return cache_root() / f"deps-{'+'.join(p.vendored)}-{key}"


def ensure_deps(p: Plan) -> Path | None:
    """Build (or reuse) the vendored libraries of the plan as static PIC archives."""
    prefix = deps_prefix_for(p)
    if prefix is None:
        return None
    if "curl" in p.vendored and not _pkg_config():
        raise LibrdkafkaError(
            "building curl from vendor/deps needs pkg-config (its static link flags):\n"
            + _install_hint([("pkg-config", "pkg-config", "pkgconf-pkg-config")])
        )
    root = _ensure_cache_root()
    with _locked(root / f".{prefix.name}.lock"):
        log(f"{', '.join(p.vendored)}: from the pinned sources in vendor/deps, static, in {prefix} "
            "(the system has no development files for them, or WATERDROP_VENDOR_DEPS asks for it)")
        bd = _build_deps_module()
        logdir = prefix / "share" / "waterdrop-deps" / "logs"
        logdir.mkdir(parents=True, exist_ok=True)
        try:
            builder = bd.Builder(prefix, bd.default_cache(), logdir)
            for name in p.vendored:
                builder.build(name)  # a library already built there is skipped (its stamp)
            bd.remove_shared(prefix)
        except SystemExit as exc:  # build_deps' die(): its message is already on stderr
            raise LibrdkafkaError(
                f"building {', '.join(p.vendored)} from vendor/deps failed (see above; logs in {logdir})"
            ) from exc
    return prefix


def _pkg_config() -> str | None:
    return os.environ.get("PKG_CONFIG") or shutil.which("pkg-config") or shutil.which("pkgconf")


def deps_env(p: Plan, deps_prefix: Path | None) -> dict[str, str]:
    """The environment for librdkafka's configure: the vendored prefix first in every path."""
    env = dict(os.environ)
    if deps_prefix is None:
        return env
    env["CPPFLAGS"] = f"-I{deps_prefix / 'include'} {env.get('CPPFLAGS', '')}".strip()
    env["LDFLAGS"] = f"-L{deps_prefix / 'lib'} {env.get('LDFLAGS', '')}".strip()
    pc = str(deps_prefix / "lib" / "pkgconfig")
    env["PKG_CONFIG_PATH"] = pc + (f":{env['PKG_CONFIG_PATH']}" if env.get("PKG_CONFIG_PATH") else "")
    if "curl" in p.vendored:
        # static libcurl.a: pkg-config --static records what it needs (ssl, crypto, z)
        env["PKG_CONFIG"] = f"{_pkg_config()} --static"
    return env


def _cache_key(flags: list[str], p: Plan | None = None) -> str:
    material = {
        "version": VERSION,
        "sha256": SHA256,
        "recipe": RECIPE_REVISION,
        "configure": flags,
        "env": _env_key(),
    }
    if p is not None and p.vendored:
        material["vendored"] = _pins_of(p.vendored)
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:10]


def prefix_for(flags: list[str] | Plan) -> Path:
    p = flags if isinstance(flags, Plan) else Plan(list(flags), [])
    return cache_root() / f"librdkafka-{VERSION}-{_cache_key(p.flags, p)}"


def _prefix_ok(prefix: Path, flags: list[str]) -> bool:
    try:
        info = json.loads((prefix / BUILD_INFO_RELPATH).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        info.get("version") == VERSION
        and info.get("sha256") == SHA256
        and info.get("configure_flags") == flags
        and (prefix / STATIC_LIB_RELPATH).is_file()
        and (prefix / HEADER_RELPATH).is_file()
    )


# --------------------------------------------------------------------------
# the build

def _jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def _run_logged(cmd: list[str], cwd: Path, logfile: Path, env: dict[str, str], what: str) -> None:
    started = time.monotonic()
    log(f"{what}: {' '.join(cmd)}")
    with open(logfile, "a", encoding="utf-8") as out:
        out.write(f"\n$ {' '.join(cmd)}  (in {cwd})\n")
        out.flush()
        res = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        tail = logfile.read_text(encoding="utf-8", errors="replace").splitlines()[-60:]
        raise LibrdkafkaError(
            f"{what} failed (exit {res.returncode}); last lines of {logfile}:\n" + "\n".join(tail)
        )
    log(f"{what}: done in {time.monotonic() - started:.0f}s")


def _makefile_config(path: Path) -> dict[str, str]:
    """Read mklove's Makefile.config ('VAR= value' / 'VAR+= value')."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*(\+?=)\s*(.*)$", line)
        if not m:
            continue
        name, op, value = m.groups()
        value = value.strip()
        values[name] = f"{values[name]} {value}".strip() if op == "+=" and name in values else value
    return values


def _split_link_flags(tokens: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"libraries": [], "library_dirs": [], "extra_link_args": []}
    pending_framework = False
    for tok in tokens:
        if pending_framework:
            # "-framework X" is one flag in two tokens: never de-duplicated apart
            out["extra_link_args"].append(tok)
            pending_framework = False
            continue
        if tok == "-framework":
            out["extra_link_args"].append(tok)
            pending_framework = True
            continue
        if tok.startswith("-l") and len(tok) > 2:
            key, val = "libraries", tok[2:]
        elif tok.startswith("-L") and len(tok) > 2:
            key, val = "library_dirs", tok[2:]
        else:
            key, val = "extra_link_args", tok
        if val not in out[key]:
            out[key].append(val)
    return out


def _check_pic(prefix: Path, link: dict[str, list[str]], workdir: Path, logfile: Path) -> None:
    """Link librdkafka.a into a shared object, as _core will be: proves the objects are PIC."""
    src = workdir / "pic_check.c"
    src.write_text(
        "#include <librdkafka/rdkafka.h>\n"
        "const char *waterdrop_pic_check(void) {\n"
        "    char err[64]; rd_kafka_conf_t *c = rd_kafka_conf_new();\n"
        "    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);\n"
        "    if (rk) rd_kafka_destroy(rk);\n"
        "    return rd_kafka_version_str();\n"
        "}\n",
        encoding="utf-8",
    )
    cmd = [
        *_cc(), "-shared", "-fPIC", "-o", str(workdir / "pic_check.so"), str(src),
        f"-I{prefix / 'include'}", str(prefix / STATIC_LIB_RELPATH),
        *[f"-L{d}" for d in link["library_dirs"]],
        *[f"-l{l}" for l in link["libraries"]],
        *link["extra_link_args"],
        # GNU ld's spelling; Apple's linker takes -undefined error
        "-Wl,-undefined,error" if sys.platform == "darwin" else "-Wl,--no-undefined",
    ]
    _run_logged(cmd, workdir, logfile, dict(os.environ), "link check (librdkafka.a into a shared object)")


_PROBE_C = """\
#include <stdio.h>
#include <librdkafka/rdkafka.h>
int main(void) {
    char buf[2048]; size_t size = sizeof buf;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_get(conf, "builtin.features", buf, &size) != RD_KAFKA_CONF_OK) return 2;
    rd_kafka_conf_destroy(conf);
    puts(buf);
    return 0;
}
"""


def probe_features(include_dirs: list[str], objects: list[str], link: dict[str, list[str]],
                   built_with: list[str] | None = None) -> tuple[list[str], str]:
    """librdkafka's builtin.features, as the linked library reports them: (features, how).

    A tiny program linked like _core is, and run.  Where it cannot run (a cross build), the
    features are read from configure's BUILT_WITH instead, when given.
    """
    with tempfile.TemporaryDirectory(prefix="waterdrop-librdkafka-features-") as tmp:
        src, exe = Path(tmp) / "features.c", Path(tmp) / "features"
        src.write_text(_PROBE_C, encoding="utf-8")
        cmd = [
            *_cc(), "-o", str(exe), str(src), *[f"-I{d}" for d in include_dirs], *objects,
            *[f"-L{d}" for d in link["library_dirs"]], *[f"-l{l}" for l in link["libraries"]],
            *link["extra_link_args"],
        ]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise LibrdkafkaError(f"linking the features probe failed: {' '.join(cmd)}\n{res.stderr[-3000:]}")
        try:
            out = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
            if out.returncode == 0 and out.stdout.strip():
                return [f for f in out.stdout.strip().split(",") if f], "builtin.features"
            why = f"exit {out.returncode}"
        except (OSError, subprocess.TimeoutExpired) as exc:  # e.g. a cross build's binary
            why = str(exc)
    if built_with is None:
        raise LibrdkafkaError(f"the features probe did not run ({why})")
    log(f"the features probe did not run ({why}); reading configure's BUILT_WITH instead")
    features = ["lz4", "sasl_plain"]  # always built in (bundled LZ4, librdkafka's own PLAIN)
    features += [f for key, f in BUILT_WITH_FEATURES.items() if key in built_with]
    return features, "BUILT_WITH"


def check_features(features: list[str], required: list[str], where: str) -> None:
    """Stop loudly when librdkafka lacks a feature the build must have."""
    missing = [f for f in required if f not in features]
    if missing:
        raise LibrdkafkaError(
            f"{where} lacks {', '.join(missing)} (it has: {' '.join(features)}); waterdrop "
            f"needs every one of {' '.join(required)}, or a producer using them would fail at "
            "its first message. See vendor/librdkafka/README.md for what each needs."
        )


def _find_source_dir(root: Path) -> Path:
    if (root / "configure").is_file():
        return root
    for child in sorted(root.iterdir()):
        if child.is_dir() and (child / "configure").is_file():
            return child
    raise LibrdkafkaError(f"no directory with a 'configure' script in the tarball (unpacked in {root})")


def _extract(tarball: Path, dest: Path) -> Path:
    with tarfile.open(tarball) as tf:
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            tf.extractall(dest)
    return _find_source_dir(dest)


def build(tarball: Path, prefix: Path, plan_: Plan, deps_prefix: Path | None = None) -> None:
    """Build librdkafka from tarball into prefix (which must not exist yet)."""
    flags = plan_.flags
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="waterdrop-librdkafka-build-"))
    logfile = work / "build.log"
    log(f"building in {work} (log: {logfile}); this takes a few minutes")
    ok = False
    try:
        srcdir = _extract(tarball, work / "src")
        env = deps_env(plan_, deps_prefix)
        env.pop("DESTDIR", None)
        _run_logged(["./configure", f"--prefix={prefix}", *flags], srcdir, logfile, env, "configure")
        # Only the C library (src/); the C++ wrapper (src-cpp/) is not used.
        _run_logged(["make", f"-j{_jobs()}", "-C", "src"], srcdir, logfile, env, f"make -j{_jobs()}")
        stage = work / "stage"
        _run_logged(
            ["make", "-C", "src", "install", f"DESTDIR={stage}"], srcdir, logfile,
            dict(env, DESTDIR=str(stage)), "make install (staging)",
        )
        staged = stage / str(prefix).lstrip("/")
        libdir = staged / "lib"
        # Only the static library stays, so nothing can link librdkafka.so by accident.
        # (Without --enable-static, librdkafka-static.a is a plain copy of librdkafka.a.)
        for p in list(libdir.glob("librdkafka.so*")) + [libdir / "librdkafka-static.a"]:
            if p.exists() or p.is_symlink():
                p.unlink()
        (staged / LICENSES_RELPATH).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(srcdir / "LICENSES.txt", staged / LICENSES_RELPATH)
        mk = _makefile_config(srcdir / "Makefile.config")
        link_tokens = shlex.split(mk.get("LDFLAGS", "")) + shlex.split(mk.get("LIBS", ""))
        link = _split_link_flags(link_tokens)
        info = {
            "version": VERSION,
            "sha256": SHA256,
            "recipe": RECIPE_REVISION,
            "configure_flags": flags,
            "built_with": mk.get("BUILT_WITH", "").split(),
            "cflags": shlex.split(mk.get("CFLAGS", "")),
            "link": link,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if deps_prefix is not None:
            info["vendored"] = {"prefix": str(deps_prefix), "libraries": plan_.vendored}
        info["features"], info["features_from"] = probe_features(
            [str(staged / "include")], [str(staged / STATIC_LIB_RELPATH)], link, info["built_with"])
        check_features(info["features"], plan_.required_features(), f"the librdkafka {VERSION} just built")
        (staged / BUILD_INFO_RELPATH).parent.mkdir(parents=True, exist_ok=True)
        (staged / BUILD_INFO_RELPATH).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        shutil.copyfile(srcdir / "Makefile.config", staged / BUILD_INFO_RELPATH.parent / "Makefile.config")
        _check_pic(staged, link, work, logfile)
        shutil.copyfile(logfile, staged / BUILD_INFO_RELPATH.parent / "build.log")
        # Move into place atomically: copy next to the final name (same file
        # system), then rename.
        tmp_final = Path(tempfile.mkdtemp(dir=prefix.parent, prefix=f".{prefix.name}.tmp-"))
        tmp_final.rmdir()
        shutil.copytree(staged, tmp_final, symlinks=True)
        try:
            os.rename(tmp_final, prefix)
        except OSError:
            shutil.rmtree(tmp_final, ignore_errors=True)
            if not prefix.is_dir():
                raise
        ok = True
        log(f"built into {prefix} in {time.monotonic() - started:.0f}s; features: {' '.join(info['features'])}")
    finally:
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"build directory kept for inspection: {work}")


def _features_of_cached(prefix: Path, p: Plan) -> None:
    """A cached prefix from before the features check: probe it once, record, and check."""
    path = prefix / BUILD_INFO_RELPATH
    info = json.loads(path.read_text(encoding="utf-8"))
    if "features" not in info:
        info["features"], info["features_from"] = probe_features(
            [str(prefix / "include")], [str(prefix / STATIC_LIB_RELPATH)], info["link"],
            info.get("built_with", []))
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    check_features(info["features"], p.required_features(), f"the cached librdkafka in {prefix}")


def ensure_built(force: bool = False) -> Path:
    """Return the prefix of a built librdkafka matching the pin, building it if needed."""
    root = _ensure_cache_root()
    p = plan()
    flags = p.flags
    prefix = prefix_for(p)
    with _locked(root / f".{prefix.name}.lock"):
        if force and prefix.exists():
            trash = root / f".{prefix.name}.old-{os.getpid()}"
            os.rename(prefix, trash)
            shutil.rmtree(trash, ignore_errors=True)
        if _prefix_ok(prefix, flags):
            log(f"reusing {prefix}")
            _features_of_cached(prefix, p)
            return prefix
        if prefix.exists():
            log(f"discarding incomplete {prefix}")
            trash = root / f".{prefix.name}.bad-{os.getpid()}"
            os.rename(prefix, trash)
            shutil.rmtree(trash, ignore_errors=True)
        log(f"configure flags: {' '.join(flags)}")
        deps_prefix = ensure_deps(p)
        with _locked(root / f".{TARBALL_NAME}.lock"):
            tarball = obtain_tarball()
        build(tarball, prefix, p, deps_prefix)
        return prefix


def build_info(prefix: Path) -> dict:
    return json.loads((Path(prefix) / BUILD_INFO_RELPATH).read_text(encoding="utf-8"))


def link_info(prefix: Path) -> dict[str, list[str]]:
    """Extension keyword arguments to link the static librdkafka in prefix.

    The dependency libraries come from librdkafka's own configure output
    (Makefile.config LDFLAGS/LIBS), recorded at build time.
    """
    prefix = Path(prefix)
    link = build_info(prefix)["link"]
    return {
        "include_dirs": [str(prefix / "include")],
        "extra_objects": [str(prefix / STATIC_LIB_RELPATH)],
        "library_dirs": list(link["library_dirs"]),
        "libraries": list(link["libraries"]),
        "extra_compile_args": [],
        "extra_link_args": list(link["extra_link_args"]),
    }


def system_link_info() -> dict[str, list[str]]:
    """Extension keyword arguments for a system librdkafka, via `pkg-config rdkafka`."""
    pkg_config = os.environ.get("PKG_CONFIG") or shutil.which("pkg-config") or shutil.which("pkgconf")
    if not pkg_config:
        raise LibrdkafkaError("WATERDROP_SYSTEM_LIBRDKAFKA is set, but pkg-config is not installed")

    def q(*args: str) -> list[str]:
        res = subprocess.run([pkg_config, *args, "rdkafka"], capture_output=True, text=True)
        if res.returncode != 0:
            raise LibrdkafkaError(
                "WATERDROP_SYSTEM_LIBRDKAFKA is set, but `pkg-config rdkafka` failed: "
                + (res.stderr.strip() or "not found")
                + " (install librdkafka's development files, or set PKG_CONFIG_PATH)"
            )
        return shlex.split(res.stdout)

    version = " ".join(q("--modversion"))
    log(f"using the system librdkafka {version} (pkg-config)")
    cflags = q("--cflags")
    link = _split_link_flags(q("--libs"))
    try:
        features, _how = probe_features([t[2:] for t in cflags if t.startswith("-I")], [], link)
    except LibrdkafkaError as exc:  # it did not link or run: say so, the build goes on
        log(f"cannot check the system librdkafka's features here: {exc}")
    else:
        check_features(features, list(REQUIRED_FEATURES), f"the system librdkafka {version}")
        log(f"its features: {' '.join(features)}")
    return {
        "include_dirs": [t[2:] for t in cflags if t.startswith("-I")],
        "extra_objects": [],
        "library_dirs": link["library_dirs"],
        "libraries": link["libraries"],
        "extra_compile_args": [t for t in cflags if not t.startswith("-I")],
        "extra_link_args": link["extra_link_args"],
    }


# --------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=f"Build (or reuse) the pinned static librdkafka {VERSION} and print its prefix.",
    )
    ap.add_argument("--fetch-only", action="store_true", help="only obtain and verify the tarball; print its path")
    ap.add_argument("--force", action="store_true", help="rebuild even if a matching prefix is cached")
    ap.add_argument("--link-flags", action="store_true", help="print the extension link arguments as JSON")
    ap.add_argument("--configure-flags", action="store_true", help="print the configure flags for this machine")
    args = ap.parse_args(argv)
    try:
        if args.configure_flags:
            p = plan()
            print(" ".join(p.flags))
            print(prefix_for(p))
            if p.vendored:
                print(f"from vendor/deps: {' '.join(p.vendored)} in {deps_prefix_for(p)}")
            return 0
        if args.fetch_only:
            print(obtain_tarball())
            return 0
        prefix = ensure_built(force=args.force)
        if args.link_flags:
            print(json.dumps(link_info(prefix), indent=2))
        else:
            print(prefix)
        return 0
    except LibrdkafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
