#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks conanfile.py and packaging/conan/test_package/conanfile.py without Conan.

Conan cannot be installed here (its registry is not reachable), so this loads both recipes
against small stand-ins for the parts of the Conan 2 API they use and checks what they declare:
package type, version (from CMakeLists.txt), exported sources, requirements per OS and their
traits, package_id, the CMake variables of build(), and package_info per OS. The real
`conan create . -tf packaging/conan/test_package` runs in .github/workflows/packaging.yml.

    python3 tests/package/conan_recipe_check.py <evio checkout>
"""
import glob
import importlib.util
import os
import sys
import types

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


# --------------------------------------------------------------------------- stand-in Conan API
class Settings:
    def __init__(self, os_name):
        self.os = os_name
        self.compiler = types.SimpleNamespace(cppstd=None)

    def get_safe(self, name):
        obj = self
        for part in name.split("."):
            obj = getattr(obj, part, None)
        return obj


class CppInfo:
    def __init__(self):
        self.properties = {}
        self.system_libs = []
        self.requires = []
        self.bindirs = ["bin"]
        self.libdirs = ["lib"]

    def set_property(self, key, value):
        self.properties[key] = value


class Info:
    cleared = False

    def clear(self):
        self.cleared = True


class ConanFile:
    def __init__(self, recipe_folder, os_name):
        self.recipe_folder = recipe_folder
        self.source_folder = recipe_folder
        self.package_folder = "/nonexistent/package"
        self.settings = Settings(os_name)
        self.cpp_info = CppInfo()
        self.info = Info()
        self.requirements_seen = []
        self.tested_reference_str = "evio/0.0.0"

    def requires(self, ref, **traits):
        self.requirements_seen.append((ref, traits))


class CMake:
    last = None

    def __init__(self, conanfile):
        self.variables = None
        self.installed = False
        CMake.last = self

    def configure(self, variables=None, **_):
        self.variables = variables or {}

    def build(self, **_):
        pass

    def install(self, **_):
        self.installed = True


def _noop(*_, **__):
    return None


def _load(_conanfile, path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def install_stand_ins():
    conan = types.ModuleType("conan")
    conan.ConanFile = ConanFile
    tools = types.ModuleType("conan.tools")
    build = types.ModuleType("conan.tools.build")
    build.check_min_cppstd = _noop
    build.can_run = lambda _c: True
    cmake = types.ModuleType("conan.tools.cmake")
    cmake.CMake = CMake
    cmake.CMakeDeps = lambda _c: types.SimpleNamespace(generate=_noop)
    cmake.CMakeToolchain = lambda _c: types.SimpleNamespace(generate=_noop)
    cmake.cmake_layout = _noop
    files = types.ModuleType("conan.tools.files")
    files.copy = _noop
    files.load = _load
    files.rmdir = _noop
    for name, mod in {"conan": conan, "conan.tools": tools, "conan.tools.build": build,
                      "conan.tools.cmake": cmake, "conan.tools.files": files}.items():
        sys.modules[name] = mod


def load_recipe(path, class_name_hint):
    spec = importlib.util.spec_from_file_location(class_name_hint, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    classes = [v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, ConanFile) and v is not ConanFile]
    if len(classes) != 1:
        raise SystemExit(f"{path}: expected one ConanFile subclass, found {len(classes)}")
    return classes[0]


# --------------------------------------------------------------------------- checks
def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    install_stand_ins()

    recipe = load_recipe(os.path.join(root, "conanfile.py"), "evio_recipe")
    with open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8") as f:
        import re
        cmake_version = re.search(r"project\(evio VERSION (\d+\.\d+\.\d+)", f.read()).group(1)

    check(recipe.name == "evio", "name is evio")
    check(recipe.package_type == "header-library", "package_type is header-library")
    check(recipe.license == "MIT", "license is MIT")
    check(set(recipe.settings) == {"os", "arch", "compiler", "build_type"},
          "settings are os, arch, compiler, build_type")
    for pattern in recipe.exports_sources:
        check(bool(glob.glob(os.path.join(root, pattern))),
              f"exports_sources pattern {pattern!r} matches files")
    for needed in ("CMakeLists.txt", "include/*", "cmake/*", "LICENSE"):
        check(needed in recipe.exports_sources, f"exports_sources has {needed}")

    r = recipe(root, "Linux")
    r.set_version()
    check(r.version == cmake_version, f"set_version() gives {cmake_version} (CMakeLists.txt)")

    r.requirements()
    refs = [ref for ref, _ in r.requirements_seen]
    check(len(refs) == 1 and refs[0].startswith("liburing/"), "Linux requires liburing")
    if r.requirements_seen:
        traits = r.requirements_seen[0][1]
        check(traits.get("transitive_headers") and traits.get("transitive_libs"),
              "liburing's headers and libs are transitive (evio's headers use them)")

    w = recipe(root, "Windows")
    w.requirements()
    check(w.requirements_seen == [], "Windows requires nothing")

    r.package_id()
    check(r.info.cleared, "package_id() clears info (one package for every configuration)")

    r.build()
    variables = CMake.last.variables if CMake.last else {}
    for var in ("EVIO_BUILD_TESTS", "EVIO_BUILD_EXAMPLES", "EVIO_BUILD_BENCHMARKS"):
        check(variables.get(var) in ("OFF", False), f"build() configures with {var}=OFF")
    r.package()
    check(CMake.last is not None and CMake.last.installed, "package() runs cmake install")

    for os_name, libs, requires in (("Linux", {"pthread"}, ["liburing::liburing"]),
                                    ("Windows", {"ws2_32", "mswsock"}, [])):
        p = recipe(root, os_name)
        p.package_info()
        props = p.cpp_info.properties
        check(props.get("cmake_file_name") == "evio", f"{os_name}: cmake_file_name evio")
        check(props.get("cmake_target_name") == "evio::evio", f"{os_name}: target evio::evio")
        check(set(p.cpp_info.system_libs) == libs, f"{os_name}: system_libs {sorted(libs)}")
        check(p.cpp_info.requires == requires, f"{os_name}: cpp_info.requires {requires}")
        check(p.cpp_info.libdirs == [] and p.cpp_info.bindirs == [],
              f"{os_name}: no lib/bin dirs (header-only)")

    tp_dir = os.path.join(root, "packaging", "conan", "test_package")
    test_recipe = load_recipe(os.path.join(tp_dir, "conanfile.py"), "evio_test_package")
    t = test_recipe(tp_dir, "Linux")
    t.tested_reference_str = "evio/" + cmake_version
    t.requirements()
    check([ref for ref, _ in t.requirements_seen] == ["evio/" + cmake_version],
          "test_package requires the tested reference")
    for f in ("CMakeLists.txt", "test_package.cpp"):
        check(os.path.isfile(os.path.join(tp_dir, f)), f"test_package has {f}")

    print(f"conan recipe check: {len(failures)} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
