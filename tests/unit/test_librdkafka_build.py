"""vendor/librdkafka/build.py's choices: every dependency comes from the system or from
vendor/deps, or the build stops naming the package to install; never a feature left out.

The header probes run the real compiler; stand-in headers that #error (first on CPPFLAGS'
include path) make the system's headers invisible, as on a machine without the -dev package.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not (ROOT / "vendor" / "librdkafka" / "build.py").is_file() or not shutil.which("cc"),
    reason="needs the checkout's vendor/ and a C compiler",
)


@pytest.fixture(scope="module")
def build():
    path = ROOT / "vendor" / "librdkafka" / "build.py"
    spec = importlib.util.spec_from_file_location("_wd_test_librdkafka_build", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture
def hide(tmp_path, monkeypatch):
    """hide("zstd.h", ...): those headers #error from now on (CPPFLAGS)."""
    monkeypatch.delenv("WATERDROP_VENDOR_DEPS", raising=False)
    monkeypatch.delenv("WATERDROP_LIBRDKAFKA_CONFIGURE_FLAGS", raising=False)
    monkeypatch.setenv("CPPFLAGS", f"-I{tmp_path}")
    # the compiler probes are plain subprocesses: not under ci/sanitize's preloaded ASan runtime
    monkeypatch.delenv("LD_PRELOAD", raising=False)

    def hide(*headers: str) -> None:
        for header in headers:
            (tmp_path / header).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / header).write_text('#error "hidden by the test"\n')

    return hide


def test_missing_codecs_are_built_from_vendor_deps(build, hide):
    hide("zstd.h", "lz4frame.h", "zlib.h")
    plan = build.plan()
    assert {"zlib", "lz4", "zstd"} <= set(plan.vendored)
    assert {"--enable-zlib", "--enable-zstd", "--enable-lz4-ext"} <= set(plan.flags)
    assert not [f for f in plan.flags if f.startswith("--disable-")]
    # their own prefix and their own librdkafka: never mixed up with a system build's cache
    assert build.deps_prefix_for(plan).name.startswith("deps-")
    assert build.prefix_for(plan) != build.prefix_for(build.Plan(plan.flags, []))


def test_openssl_and_curl_come_together(build, hide, monkeypatch):
    monkeypatch.setenv("WATERDROP_VENDOR_DEPS", "curl")
    assert build.plan().vendored == ["zlib", "openssl", "curl"]


def test_without_cyrus_sasl_a_linux_build_stops_naming_the_package(build, hide):
    if not sys.platform.startswith("linux"):
        pytest.skip("GSSAPI is required on Linux only")
    hide("sasl/sasl.h")
    with pytest.raises(build.LibrdkafkaError) as err:
        build.plan()
    text = str(err.value)
    assert "libsasl2-dev" in text and "cyrus-sasl-devel" in text and "--disable-gssapi" in text


def test_gssapi_left_out_on_purpose(build, hide, monkeypatch):
    hide("sasl/sasl.h")
    monkeypatch.setenv("WATERDROP_LIBRDKAFKA_CONFIGURE_FLAGS", "--disable-gssapi")
    plan = build.plan()
    assert plan.flags.count("--disable-gssapi") == 1 and "--enable-gssapi" not in plan.flags
    assert "sasl_gssapi" not in plan.required_features()


def test_vendor_deps_none_stops_naming_every_missing_package(build, hide, monkeypatch):
    hide("zstd.h", "zlib.h")
    monkeypatch.setenv("WATERDROP_VENDOR_DEPS", "none")
    with pytest.raises(build.LibrdkafkaError) as err:
        build.plan()
    assert "libzstd-dev" in str(err.value) and "zlib1g-dev" in str(err.value)


def test_unknown_vendor_deps_name_is_refused(build, hide, monkeypatch):
    monkeypatch.setenv("WATERDROP_VENDOR_DEPS", "zstd,brotli")
    with pytest.raises(build.LibrdkafkaError, match="brotli"):
        build.plan()


def test_a_missing_feature_stops_the_build(build):
    required = build.Plan(["--enable-gssapi", "--enable-curl"], []).required_features()
    assert {"zstd", "lz4", "gzip", "snappy", "sasl_gssapi", "oidc"} <= set(required)
    have = [f for f in required if f != "zstd"]
    with pytest.raises(build.LibrdkafkaError, match="lacks zstd"):
        build.check_features(have, required, "this librdkafka")
    build.check_features(required, required, "this librdkafka")
