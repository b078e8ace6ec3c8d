#!/usr/bin/env bash
# cibuildwheel before-all for Linux (manylinux_2_28, musllinux_1_2) and macOS: once per
# platform/architecture, before any Python's wheel is built.
#   1. the build tools and the platform's Cyrus SASL + Kerberos headers (GSSAPI; Linux only);
#   2. vendor/deps/build_deps.py: openssl, zlib, zstd, lz4, curl as static PIC libraries
#      from pinned, checksummed sources into $WATERDROP_DEPS_PREFIX;
#   3. vendor/librdkafka/build.py: the pinned librdkafka against that prefix, into the
#      cache every Python's `pip wheel` then reuses (same flags, same cache key).
# The variables that point librdkafka's configure at the prefix come from
# [tool.cibuildwheel.*] environment in pyproject.toml; they are set again here so that this
# script also works on its own (the values are the same).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# The same defaults as pyproject.toml's [tool.cibuildwheel.*] environment.
if [ "$(uname -s)" = Darwin ]; then
    WATERDROP_DEPS_PREFIX=${WATERDROP_DEPS_PREFIX:-/tmp/waterdrop-deps}
else
    WATERDROP_DEPS_PREFIX=${WATERDROP_DEPS_PREFIX:-/opt/waterdrop-deps}
fi

if command -v dnf >/dev/null || command -v yum >/dev/null; then
    # manylinux_2_28 (AlmaLinux 8). OpenSSL's Configure needs these perl modules.
    pm=$(command -v dnf || command -v yum)
    "$pm" install -y perl perl-IPC-Cmd perl-Time-Piece perl-Pod-Html make pkgconfig \
        cyrus-sasl-devel krb5-devel
elif command -v apk >/dev/null; then
    # musllinux_1_2 (Alpine)
    apk add --no-cache bash perl make pkgconf linux-headers cyrus-sasl-dev krb5-dev
elif [ "$(uname -s)" = Darwin ]; then
    command -v pkg-config >/dev/null || brew install pkgconf
fi

PY=""
for cand in python3 /opt/python/cp312-cp312/bin/python /opt/python/cp311-cp311/bin/python python; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 8))'; then
        PY=$cand; break
    fi
done
[ -n "$PY" ] || { echo "before-all: no Python >= 3.8 found" >&2; exit 1; }

"$PY" vendor/deps/build_deps.py build --prefix "$WATERDROP_DEPS_PREFIX"
eval "$("$PY" vendor/deps/build_deps.py env --prefix "$WATERDROP_DEPS_PREFIX")"
"$PY" vendor/librdkafka/build.py
"$PY" vendor/librdkafka/build.py --link-flags
