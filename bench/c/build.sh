#!/usr/bin/env bash
# Build bench/c/produce_bench against the vendored librdkafka (the static library waterdrop's
# _core links; built or reused by vendor/librdkafka/build.py). The binary is never committed.
#     bench/c/build.sh            # -> bench/c/produce_bench
# Environment: PYTHON (default python3), CC (default cc), CFLAGS (default -O2 -g).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
PYTHON=${PYTHON:-python3}
CC=${CC:-cc}
read -r -a link < <("$PYTHON" - "$root/vendor/librdkafka/build.py" <<'PY'
import json, subprocess, sys
flags = json.loads(subprocess.run([sys.executable, sys.argv[1], "--link-flags"], check=True,
                                  stdout=subprocess.PIPE, text=True).stdout)
out = [f"-I{d}" for d in flags["include_dirs"]] + flags["extra_compile_args"]
out += flags["extra_objects"] + [f"-L{d}" for d in flags["library_dirs"]]
out += [f"-l{l}" for l in flags["libraries"]] + flags["extra_link_args"]
print(" ".join(out))
PY
)
# shellcheck disable=SC2086
$CC ${CFLAGS:--O2 -g} -Wall -o "$here/produce_bench" "$here/produce_bench.c" "${link[@]}"
echo "$here/produce_bench"
