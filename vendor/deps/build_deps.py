#!/usr/bin/env python3
"""Build librdkafka's dependencies from pinned, checksummed sources (release wheels).

The pins are in pins.json beside this file: for each library one source tarball
(Debian's .orig.tar.*, which for openssl, curl and lz4 is the upstream release
file itself), its sha256, and the URLs to try in order.  A download whose sha256
differs from the pin is discarded; the pin is the trust anchor, not the host.

    build_deps.py fetch    [--cache DIR]              download + verify every tarball
    build_deps.py build    --prefix DIR [--cache DIR] [--only a,b] [--skip a,b]
    build_deps.py licenses --dest DIR [--cache DIR]   extract each licence file
    build_deps.py check-licenses [--cache DIR]        compare licenses/ in the repo with the tarballs
    build_deps.py env      --prefix DIR [--shell sh|github]   the variables that point
                                                      vendor/librdkafka/build.py at the prefix

`build` makes static, position-independent libraries only (lib/*.a, headers,
pkg-config files) for Linux (glibc and musl) and macOS.  Anything shared that an
upstream install puts into the prefix is deleted, so that `-lssl` and friends
can only resolve to the static archives: librdkafka's configure (run by
vendor/librdkafka/build.py with PKG_CONFIG="pkg-config --static") then records
static link flags, and `_core` ends up needing nothing beyond the C library
and, for GSSAPI, the platform's Cyrus SASL and Kerberos libraries (cyrus-sasl-devel /
cyrus-sasl-dev, linked dynamically; auditwheel bundles them).  Cyrus SASL is not built
here: Debian's tarball is a dfsg repack that only builds with Debian's 41 patches and
autoreconf, and librdkafka's own static builds link the platform's libsasl2 the same way.

Windows is not built here: see vcpkg/ beside this file.

Environment: CC, CFLAGS, LDFLAGS (added to every build; on macOS put
`-arch ...` here and set MACOSX_DEPLOYMENT_TARGET), WATERDROP_DEPS_JOBS,
WATERDROP_DEPS_OPENSSL_TARGET (an explicit OpenSSL Configure target, e.g.
darwin64-x86_64-cc when cross-compiling), WATERDROP_DEPS_CACHE (default
${XDG_CACHE_HOME:-~/.cache}/waterdrop/deps).

Only the standard library is used: this runs in manylinux/musllinux
containers and on bare CI hosts before anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PINS = json.loads((HERE / "pins.json").read_text(encoding="utf-8"))
NAMES = [k for k in PINS if not k.startswith("_")]
# Build order: later libraries link against earlier ones.
ORDER = ["zlib", "lz4", "zstd", "openssl", "curl"]
assert sorted(ORDER) == sorted(NAMES), "pins.json and ORDER disagree"
LICENSES_DIR = REPO / "licenses"
TIMEOUT = 60


def log(msg: str) -> None:
    print(f"[waterdrop deps] {msg}", file=sys.stderr, flush=True)


def die(msg: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
    log(f"error: {msg}")
    raise SystemExit(1)


def default_cache() -> Path:
    if os.environ.get("WATERDROP_DEPS_CACHE"):
        return Path(os.environ["WATERDROP_DEPS_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "waterdrop" / "deps"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ----------------------------------------------------------------------------- fetch

def fetch(name: str, cache: Path) -> Path:
    """Return the verified tarball of `name`, downloading it into the cache if needed."""
    pin = PINS[name]
    cache.mkdir(parents=True, exist_ok=True)
    dest = cache / pin["file"]
    if dest.is_file():
        if sha256_of(dest) == pin["sha256"]:
            return dest
        log(f"{dest}: wrong sha256, removed")
        dest.unlink()
    tried = []
    for url in pin["urls"]:
        part = dest.with_name(dest.name + ".part")
        log(f"{name}: downloading {url}")
        try:
            req = urllib.request.Request(url, headers={"User-Agent": "waterdrop-deps"})
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp, open(part, "wb") as out:
                shutil.copyfileobj(resp, out)
        except Exception as exc:  # noqa: BLE001 - any failure: next URL
            tried.append(f"{url}: {exc}")
            part.unlink(missing_ok=True)
            continue
        got = sha256_of(part)
        if got != pin["sha256"]:
            tried.append(f"{url}: sha256 {got}, pinned {pin['sha256']}")
            part.unlink()
            continue
        os.replace(part, dest)
        return dest
    die(
        f"no source of {pin['file']} (sha256 {pin['sha256']}) worked:\n  "
        + "\n  ".join(tried)
        + f"\nPut the file (from Debian's source package {pin['debian']!r}) into {cache} and run again."
    )


def extract(tarball: Path, dest: Path) -> Path:
    """Unpack and return the single top-level directory."""
    with tarfile.open(tarball) as tf:
        if hasattr(tarfile, "data_filter"):
            tf.extractall(dest, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            tf.extractall(dest)
    tops = [p for p in dest.iterdir() if p.is_dir()]
    if len(tops) != 1:
        die(f"{tarball.name}: expected one top-level directory, found {[p.name for p in tops]}")
    return tops[0]


# ----------------------------------------------------------------------------- build

def jobs() -> str:
    if os.environ.get("WATERDROP_DEPS_JOBS"):
        return os.environ["WATERDROP_DEPS_JOBS"]
    try:
        return str(max(1, len(os.sched_getaffinity(0))))
    except AttributeError:
        return str(os.cpu_count() or 1)


class Builder:
    def __init__(self, prefix: Path, cache: Path, logdir: Path):
        self.prefix = prefix
        self.cache = cache
        self.logdir = logdir
        self.darwin = sys.platform == "darwin"
        cflags = os.environ.get("CFLAGS", "")
        self.cflags = f"-O2 -fPIC {cflags}".strip()
        self.ldflags = os.environ.get("LDFLAGS", "")
        self.env = dict(os.environ)
        self.env.update(
            CFLAGS=self.cflags,
            CPPFLAGS=f"-I{prefix / 'include'} {os.environ.get('CPPFLAGS', '')}".strip(),
            LDFLAGS=f"-L{prefix / 'lib'} {self.ldflags}".strip(),
            PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"),
            PKG_CONFIG_LIBDIR=str(prefix / "lib" / "pkgconfig"),
        )
        self.env.pop("DESTDIR", None)

    def run(self, name: str, cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        logfile = self.logdir / f"{name}.log"
        with open(logfile, "a", encoding="utf-8") as out:
            out.write(f"\n$ {shlex.join(cmd)}   (in {cwd})\n")
            out.flush()
            res = subprocess.run(cmd, cwd=cwd, env=env or self.env, stdout=out, stderr=subprocess.STDOUT)
        if res.returncode != 0:
            tail = logfile.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
            die(f"{name}: `{shlex.join(cmd)}` failed (exit {res.returncode}); last lines of {logfile}:\n"
                + "\n".join(tail))

    def make(self, name: str, cwd: Path, *args: str) -> None:
        self.run(name, ["make", f"-j{jobs()}", *args], cwd)

    # one method per library -----------------------------------------------------

    def zlib(self, src: Path) -> None:
        self.run("zlib", ["./configure", "--static", f"--prefix={self.prefix}"], src)
        self.make("zlib", src, "libz.a")
        self.run("zlib", ["make", "install"], src)

    def lz4(self, src: Path) -> None:
        args = [f"PREFIX={self.prefix}", "BUILD_SHARED=no", f"CFLAGS={self.cflags}"]
        self.make("lz4", src / "lib", "liblz4.a", *args)
        self.run("lz4", ["make", "-C", "lib", "install", *args], src)

    def zstd(self, src: Path) -> None:
        args = [f"PREFIX={self.prefix}", f"CFLAGS={self.cflags}"]
        self.make("zstd", src / "lib", "libzstd.a", *args)
        self.run("zstd", ["make", "-C", "lib", "install-static", "install-includes", "install-pc", *args], src)

    def openssl(self, src: Path) -> None:
        target = os.environ.get("WATERDROP_DEPS_OPENSSL_TARGET", "")
        configure = ["perl", "./Configure", target] if target else ["./config"]
        # /usr/lib/ssl: where librdkafka's own static builds look for openssl.cnf; absent
        # on most hosts, which keeps a host's config for another OpenSSL out of ours.
        # CA certificates: librdkafka probes the usual locations when OpenSSL is static.
        self.run("openssl", [
            *configure, f"--prefix={self.prefix}", "--libdir=lib", "--openssldir=/usr/lib/ssl",
            "no-shared", "no-module", "no-tests", "no-docs", "no-apps", "no-zlib",
            *shlex.split(self.cflags),
        ], src)
        self.make("openssl", src, "build_libs")
        self.run("openssl", ["make", "install_dev"], src)

    def curl(self, src: Path) -> None:
        # HTTP(S) only, for OAUTHBEARER OIDC token requests; the same cut-down
        # feature set as librdkafka's own static builds.
        self.run("curl", [
            "./configure", f"--prefix={self.prefix}", "--enable-static", "--disable-shared",
            "--with-pic", f"--with-openssl={self.prefix}", f"--with-zlib={self.prefix}",
            "--disable-manual", "--disable-docs", "--disable-ldap", "--disable-ldaps",
            "--disable-dict", "--disable-ftp", "--disable-file", "--disable-gopher",
            "--disable-imap", "--disable-mqtt", "--disable-pop3", "--disable-rtsp",
            "--disable-smb", "--disable-smtp", "--disable-telnet", "--disable-tftp",
            "--disable-ntlm", "--disable-libcurl-option",
            "--without-libpsl", "--without-brotli", "--without-zstd", "--without-libidn2",
            "--without-librtmp", "--without-libssh2", "--without-nghttp2", "--without-nghttp3",
            "--without-ngtcp2", "--without-quiche", "--without-gssapi",
        ], src)
        self.make("curl", src / "lib")
        self.run("curl", ["make", "install"], src / "lib")
        self.run("curl", ["make", "install"], src / "include")
        self.run("curl", ["make", "install-pkgconfigDATA"], src)

    def build(self, name: str) -> None:
        started = time.monotonic()
        stamp = self.prefix / "share" / "waterdrop-deps" / f"{name}.json"
        pin = PINS[name]
        if stamp.is_file() and json.loads(stamp.read_text()).get("sha256") == pin["sha256"]:
            log(f"{name} {pin['version']}: already in {self.prefix}")
            return
        tarball = fetch(name, self.cache)
        work = Path(tempfile.mkdtemp(prefix=f"waterdrop-deps-{name}-"))
        try:
            src = extract(tarball, work)
            log(f"{name} {pin['version']}: building (log {self.logdir / (name + '.log')})")
            getattr(self, name.replace("-", "_"))(src)
            lic = self.prefix / "share" / "licenses" / name
            lic.mkdir(parents=True, exist_ok=True)
            for inside, as_name in pin["licenses"].items():
                shutil.copyfile(src / inside, lic / as_name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"version": pin["version"], "sha256": pin["sha256"],
                                     "file": pin["file"]}, indent=2) + "\n")
        log(f"{name} {pin['version']}: done in {time.monotonic() - started:.0f}s")


def remove_shared(prefix: Path) -> None:
    """Only static archives may stay: -lfoo must never find a shared copy here."""
    for libdir in (prefix / "lib", prefix / "lib64"):
        if not libdir.is_dir():
            continue
        for p in libdir.iterdir():
            n = p.name
            if ".so" in n or n.endswith((".dylib", ".la")):
                p.unlink()


def cmd_build(args: argparse.Namespace) -> int:
    if sys.platform.startswith("win"):
        die("Windows: use vendor/deps/vcpkg (see README.md)")
    names = [n for n in ORDER if (not args.only or n in args.only) and n not in args.skip]
    prefix = Path(args.prefix).resolve()
    prefix.mkdir(parents=True, exist_ok=True)
    logdir = prefix / "share" / "waterdrop-deps" / "logs"
    logdir.mkdir(parents=True, exist_ok=True)
    builder = Builder(prefix, Path(args.cache), logdir)
    started = time.monotonic()
    log(f"building {', '.join(names)} into {prefix} ({platform.system()} {platform.machine()}, "
        f"-j{jobs()}, CFLAGS={builder.cflags!r})")
    for name in names:
        builder.build(name)
    remove_shared(prefix)
    log(f"all done in {time.monotonic() - started:.0f}s")
    print(prefix)
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    for name in ORDER:
        print(fetch(name, Path(args.cache)))
    return 0


def _license_texts(cache: Path) -> dict[Path, bytes]:
    """{relative path under licenses/: text} from the pinned tarballs."""
    out: dict[Path, bytes] = {}
    for name in ORDER:
        pin = PINS[name]
        tarball = fetch(name, cache)
        with tarfile.open(tarball) as tf:
            members = {m.name.split("/", 1)[1]: m for m in tf.getmembers() if "/" in m.name}
            for inside, as_name in pin["licenses"].items():
                fh = tf.extractfile(members[inside])
                assert fh is not None
                out[Path(name) / as_name] = fh.read()
    return out


def cmd_licenses(args: argparse.Namespace) -> int:
    dest = Path(args.dest)
    for rel, text in _license_texts(Path(args.cache)).items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(text)
        print(dest / rel)
    return 0


def cmd_check_licenses(args: argparse.Namespace) -> int:
    bad = []
    for rel, text in _license_texts(Path(args.cache)).items():
        have = LICENSES_DIR / rel
        if not have.is_file() or have.read_bytes() != text:
            bad.append(str(rel))
    if bad:
        die(f"licenses/ differs from the pinned tarballs: {', '.join(bad)} "
            f"(regenerate: {Path(__file__).name} licenses --dest licenses)")
    log("licenses/ matches the pinned tarballs")
    return 0


def env_for(prefix: Path) -> dict[str, str]:
    """What vendor/librdkafka/build.py (librdkafka's configure) needs to use the prefix."""
    return {
        "CPPFLAGS": f"-I{prefix}/include",
        "LDFLAGS": f"-L{prefix}/lib",
        "PKG_CONFIG": "pkg-config --static",
        "PKG_CONFIG_PATH": f"{prefix}/lib/pkgconfig",
    }


def cmd_env(args: argparse.Namespace) -> int:
    prefix = Path(args.prefix).resolve()
    for k, v in env_for(prefix).items():
        if args.shell == "github":
            print(f"{k}={v}")
        else:
            print(f"export {k}={shlex.quote(v)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    csv = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    for name in ("fetch", "build", "licenses", "check-licenses", "env"):
        p = sub.add_parser(name)
        p.add_argument("--cache", default=str(default_cache()))
        if name in ("build", "env"):
            p.add_argument("--prefix", required=True)
        if name == "build":
            p.add_argument("--only", type=csv, default=[])
            p.add_argument("--skip", type=csv, default=[])
        if name == "licenses":
            p.add_argument("--dest", required=True)
        if name == "env":
            p.add_argument("--shell", choices=("sh", "github"), default="sh")
    args = ap.parse_args(argv)
    return {
        "fetch": cmd_fetch, "build": cmd_build, "licenses": cmd_licenses,
        "check-licenses": cmd_check_licenses, "env": cmd_env,
    }[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
