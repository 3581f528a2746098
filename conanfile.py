# SPDX-License-Identifier: MIT
# Conan 2 recipe for evio, a header-only C++20 coroutine networking library.
#
#   conan create . -tf packaging/conan/test_package -s compiler.cppstd=20 --build=missing
#
# The package holds the headers only; consumers get the target evio::evio from Conan's CMakeDeps
# (find_package(evio CONFIG REQUIRED)) or evio.pc from PkgConfigDeps. On Linux it requires
# liburing (io_uring backend, with epoll as the run-time fallback); on Windows it links
# ws2_32 and mswsock.
import os
import re

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rmdir

required_conan_version = ">=2.0"


class EvioConan(ConanFile):
    name = "evio"
    description = "Header-only C++20 coroutine networking library (io_uring, epoll, IOCP)"
    license = "MIT"
    topics = ("networking", "coroutines", "io_uring", "epoll", "iocp", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    exports_sources = "CMakeLists.txt", "cmake/*", "include/*", "LICENSE"
    no_copy_source = True

    def set_version(self):
        # One source of truth: project(evio VERSION x.y.z) in CMakeLists.txt.
        text = load(self, os.path.join(self.recipe_folder, "CMakeLists.txt"))
        match = re.search(r"project\(evio VERSION (\d+\.\d+\.\d+)", text)
        self.version = match.group(1)

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        if self.settings.os == "Linux":
            # evio's headers include <liburing.h> and its code calls liburing.
            self.requires("liburing/[>=2.3 <3]", transitive_headers=True, transitive_libs=True)

    def validate(self):
        if self.settings.get_safe("compiler.cppstd"):
            check_min_cppstd(self, 20)

    def package_id(self):
        self.info.clear()

    def generate(self):
        CMakeToolchain(self).generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure(variables={
            "EVIO_BUILD_TESTS": "OFF",
            "EVIO_BUILD_EXAMPLES": "OFF",
            "EVIO_BUILD_BENCHMARKS": "OFF",
            "EVIO_VERIFY_HEADERS": "OFF",
        })

    def package(self):
        copy(self, "LICENSE", self.source_folder, os.path.join(self.package_folder, "licenses"))
        cmake = CMake(self)
        cmake.install()
        # CMakeDeps and PkgConfigDeps generate these for consumers from package_info().
        rmdir(self, os.path.join(self.package_folder, "share"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "evio")
        self.cpp_info.set_property("cmake_target_name", "evio::evio")
        self.cpp_info.set_property("pkg_config_name", "evio")
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        if self.settings.os == "Linux":
            self.cpp_info.system_libs = ["pthread"]
            self.cpp_info.requires = ["liburing::liburing"]
        elif self.settings.os == "Windows":
            self.cpp_info.system_libs = ["ws2_32", "mswsock"]
