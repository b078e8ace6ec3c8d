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

$manifest = Get-Content "$here\vcpkg.json" -Raw | ConvertFrom-Json
if ($manifest.'builtin-baseline' -notmatch '^[0-9a-f]{40}$') {
    # The baseline must be a commit of github.com/microsoft/vcpkg; pick the one that the
    # runner's vcpkg checkout is at if the pin was left as a placeholder, and say so.
    $head = (git -C $vcpkg rev-parse HEAD).Trim()
    Write-Warning "vcpkg.json has no pinned builtin-baseline; using the runner's vcpkg commit $head"
    $manifest.'builtin-baseline' = $head
}
New-Item -ItemType Directory -Force -Path $root | Out-Null
$manifest | ConvertTo-Json -Depth 10 | Set-Content "$root\vcpkg.json" -Encoding ascii

& "$vcpkg\vcpkg.exe" install `
    --x-manifest-root="$root" `
    --x-install-root="$root\installed" `
    --overlay-ports="$here\ports" `
    --triplet=x64-windows
if ($LASTEXITCODE -ne 0) { throw "vcpkg install failed ($LASTEXITCODE)" }

Copy-Item "$root\installed\x64-windows\tools\pkgconf\pkgconf.exe" "$root\pkgconf.exe"
& "$root\pkgconf.exe" --with-path="$root\installed\x64-windows\lib\pkgconfig" --modversion rdkafka
