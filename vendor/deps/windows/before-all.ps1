# cibuildwheel before-all on Windows (GitHub's windows-2022 runner; NOT run on the
# development machine, which has no Windows). See vendor/deps/README.md.
#
# vcpkg (manifest mode) builds librdkafka 2.14.2 from the overlay port in ports/ (same
# tarball as vendor/librdkafka, SHA512-checked) and its dependencies (openssl, zlib, zstd,
# lz4, curl) at the versions of the pinned vcpkg baseline: every vcpkg port checks the
# SHA512 of its source. The triplet is x64-windows (DLLs); setup.py links librdkafka
# through pkg-config (WATERDROP_SYSTEM_LIBRDKAFKA=1) and delvewheel bundles the DLLs.
# SASL on Windows is librdkafka's own SSPI (GSSAPI/Kerberos) plus PLAIN/SCRAM/OAUTHBEARER.
$ErrorActionPreference = "Stop"
$here = Split-Path -Parent $MyInvocation.MyCommand.Path
$root = "C:\waterdrop-vcpkg"
$vcpkg = if ($env:VCPKG_INSTALLATION_ROOT) { $env:VCPKG_INSTALLATION_ROOT } else { "C:\vcpkg" }

# The baseline is vcpkg's 2026.07.29 release tag (commit 9e593bb1..., 2026-07-29): it pins
# every port's version (openssl, zlib, zstd, lz4, curl, pkgconf) and vcpkg-tool's. The runner's
# vcpkg checkout is moved to that commit and bootstrapped there, so that the tool is the one
# those ports were released with, whatever the runner image ships.
$manifest = Get-Content "$here\vcpkg.json" -Raw | ConvertFrom-Json
$baseline = $manifest.'builtin-baseline'
if ($baseline -notmatch '^[0-9a-f]{40}$') { throw "vcpkg.json: builtin-baseline is not a commit: $baseline" }
# (rev-parse --quiet: no stderr, which Windows PowerShell would turn into a stopping error)
$have = git -C $vcpkg rev-parse --verify --quiet "$baseline^{commit}"
if (-not $have) {
    git -C $vcpkg fetch --quiet origin $baseline
    if ($LASTEXITCODE -ne 0) { throw "cannot fetch vcpkg commit $baseline" }
}
git -C $vcpkg -c advice.detachedHead=false checkout --quiet $baseline
if ($LASTEXITCODE -ne 0) { throw "cannot check out vcpkg commit $baseline" }
& "$vcpkg\bootstrap-vcpkg.bat" -disableMetrics
if ($LASTEXITCODE -ne 0) { throw "bootstrap-vcpkg failed ($LASTEXITCODE)" }
New-Item -ItemType Directory -Force -Path $root | Out-Null
Copy-Item "$here\vcpkg.json" "$root\vcpkg.json"

& "$vcpkg\vcpkg.exe" install `
    --x-manifest-root="$root" `
    --x-install-root="$root\installed" `
    --overlay-ports="$here\ports" `
    --triplet=x64-windows
if ($LASTEXITCODE -ne 0) { throw "vcpkg install failed ($LASTEXITCODE)" }

Copy-Item "$root\installed\x64-windows\tools\pkgconf\pkgconf.exe" "$root\pkgconf.exe"
& "$root\pkgconf.exe" --with-path="$root\installed\x64-windows\lib\pkgconfig" --modversion rdkafka
