# Overlay port: librdkafka at waterdrop's pin (vendor/librdkafka/VERSION), from the same
# GitHub tag tarball whose sha256 is vendor/librdkafka/SHA256; vcpkg checks this SHA512.
vcpkg_download_distfile(ARCHIVE
    URLS "https://codeload.github.com/confluentinc/librdkafka/legacy.tar.gz/refs/tags/v${VERSION}"
    FILENAME "librdkafka-${VERSION}.tar.gz"
    SHA512 66f87e4e2a2ab4c1724ccd3d05ea7c870442cb15cedeaa8189bdeb51da0988448ec26ebbd2ecb22ec5cb16ed87a6e7a95cab80e6c8666014d11423c5e97491ca
)
vcpkg_extract_source_archive(SOURCE_PATH ARCHIVE "${ARCHIVE}")

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DRDKAFKA_BUILD_STATIC=OFF
        -DRDKAFKA_BUILD_EXAMPLES=OFF
        -DRDKAFKA_BUILD_TESTS=OFF
        -DWITH_BUNDLED_SSL=OFF
        -DWITH_SSL=ON
        -DWITH_ZLIB=ON
        -DWITH_ZSTD=ON
        -DWITH_CURL=ON
        -DENABLE_LZ4_EXT=ON
        -DWITH_SASL=ON
        -DWITH_PKGCONFIG=ON
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME RdKafka CONFIG_PATH lib/cmake/RdKafka)
vcpkg_fixup_pkgconfig()
file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug/include" "${CURRENT_PACKAGES_DIR}/debug/share")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSES.txt")
