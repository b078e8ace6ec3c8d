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

# Optional features: (configure feature name, header that must be present).
# A feature whose header the compiler can see is forced on (configure then
# fails loudly if the library itself is missing); otherwise it is disabled.
# LZ4 is always available: without liblz4-dev librdkafka uses its bundled copy.
FEATURES = (
    ("zlib", "zlib.h"),
    ("zstd", "zstd.h"),
    ("ssl", "openssl/ssl.h"),
    ("gssapi", "sasl/sasl.h"),  # Cyrus SASL (GSSAPI/Kerberos); PLAIN/SCRAM/OAUTHBEARER are built in
    ("curl", "curl/curl.h"),  # HTTP client: OAUTHBEARER OIDC
    ("lz4-ext", "lz4frame.h"),
)

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


def configure_flags() -> list[str]:
    """Flags for ./configure (without --prefix): features follow what the machine has."""
    flags = []
    for feature, header in FEATURES:
        flags.append(f"--{'enable' if have_header(header) else 'disable'}-{feature}")
    flags += shlex.split(os.environ.get("WATERDROP_LIBRDKAFKA_CONFIGURE_FLAGS", ""))
    return flags


def _cache_key(flags: list[str]) -> str:
    material = {
        "version": VERSION,
        "sha256": SHA256,
        "recipe": RECIPE_REVISION,
        "configure": flags,
        "env": {k: os.environ.get(k, "") for k in ("CC", "CFLAGS", "CPPFLAGS", "LDFLAGS")},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:10]


def prefix_for(flags: list[str]) -> Path:
    return cache_root() / f"librdkafka-{VERSION}-{_cache_key(flags)}"


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


def build(tarball: Path, prefix: Path, flags: list[str]) -> None:
    """Build librdkafka from tarball into prefix (which must not exist yet)."""
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="waterdrop-librdkafka-build-"))
    logfile = work / "build.log"
    log(f"building in {work} (log: {logfile}); this takes a few minutes")
    ok = False
    try:
        srcdir = _extract(tarball, work / "src")
        env = dict(os.environ)
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
        log(f"built into {prefix} in {time.monotonic() - started:.0f}s; features: {' '.join(info['built_with'])}")
    finally:
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"build directory kept for inspection: {work}")


def ensure_built(force: bool = False) -> Path:
    """Return the prefix of a built librdkafka matching the pin, building it if needed."""
    root = _ensure_cache_root()
    flags = configure_flags()
    prefix = prefix_for(flags)
    with _locked(root / f".{prefix.name}.lock"):
        if force and prefix.exists():
            trash = root / f".{prefix.name}.old-{os.getpid()}"
            os.rename(prefix, trash)
            shutil.rmtree(trash, ignore_errors=True)
        if _prefix_ok(prefix, flags):
            log(f"reusing {prefix}")
            return prefix
        if prefix.exists():
            log(f"discarding incomplete {prefix}")
            trash = root / f".{prefix.name}.bad-{os.getpid()}"
            os.rename(prefix, trash)
            shutil.rmtree(trash, ignore_errors=True)
        log(f"configure flags: {' '.join(flags)}")
        with _locked(root / f".{TARBALL_NAME}.lock"):
            tarball = obtain_tarball()
        build(tarball, prefix, flags)
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
            flags = configure_flags()
            print(" ".join(flags))
            print(prefix_for(flags))
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
