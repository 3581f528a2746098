#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks .github/workflows/*.yml locally (GitHub Actions cannot run here):
#   - every file parses as YAML (PyYAML, Debian's python3-yaml) into a workflow: a trigger (`on`),
#     jobs, each with runs-on and a non-empty list of steps, each step exactly one of run/uses;
#   - every `cmake --preset X`, `cmake --build --preset X` and `ctest --preset X` names a preset
#     of that kind in CMakePresets.json (matrix values included);
#   - every repository script a step calls (scripts/..., tests/...) exists and is executable;
#   - every stage given to scripts/test.sh or scripts/install-deps.sh is one test.sh knows.
#
#   scripts/check_workflows.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py=""
for candidate in /usr/bin/python3 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import yaml' 2>/dev/null; then
        py="$candidate"
        break
    fi
done
if [ -z "$py" ]; then
    echo "check_workflows.sh: needs python3 with PyYAML (Debian: apt-get install python3-yaml)" >&2
    exit 2
fi

exec "$py" - "$root" <<'PY'
import glob
import json
import os
import re
import sys

import yaml

root = sys.argv[1]
problems = []


def problem(where, what):
    problems.append(f"{where}: {what}")


presets = json.load(open(os.path.join(root, "CMakePresets.json"), encoding="utf-8"))
kinds = {
    "configure": {p["name"] for p in presets.get("configurePresets", []) if not p.get("hidden")},
    "build": {p["name"] for p in presets.get("buildPresets", []) if not p.get("hidden")},
    "test": {p["name"] for p in presets.get("testPresets", []) if not p.get("hidden")},
}
test_sh = open(os.path.join(root, "scripts", "test.sh"), encoding="utf-8").read()
stages = set(re.findall(r"^\s{8}([a-z][a-z-]*)\)\s", test_sh, re.M))


def matrix_values(job, key):
    m = (job.get("strategy") or {}).get("matrix") or {}
    vals = [str(v) for v in m.get(key, []) if not isinstance(v, dict)]
    vals += [str(inc[key]) for inc in m.get("include", []) if isinstance(inc, dict) and key in inc]
    return vals


def expand(word, job):
    """A preset word; ${{ matrix.x }} becomes each of the matrix's values."""
    m = re.fullmatch(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", word)
    if m:
        return matrix_values(job, m.group(1))
    return [word]


files = sorted(glob.glob(os.path.join(root, ".github", "workflows", "*.yml")) +
               glob.glob(os.path.join(root, ".github", "workflows", "*.yaml")))
if not files:
    problem(".github/workflows", "no workflow files")

for path in files:
    rel = os.path.relpath(path, root)
    try:
        doc = yaml.safe_load(open(path, encoding="utf-8"))
    except yaml.YAMLError as e:
        problem(rel, f"not valid YAML: {e}")
        continue
    if not isinstance(doc, dict):
        problem(rel, "not a mapping")
        continue
    # YAML 1.1 reads the key `on` as the boolean true.
    if "on" not in doc and True not in doc:
        problem(rel, "no trigger (`on:`)")
    jobs = doc.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        problem(rel, "no jobs")
        continue
    for jname, job in jobs.items():
        where = f"{rel}: job {jname}"
        if not isinstance(job, dict):
            problem(where, "not a mapping")
            continue
        if "runs-on" not in job:
            problem(where, "no runs-on")
        steps = job.get("steps")
        if not isinstance(steps, list) or not steps:
            problem(where, "no steps")
            continue
        for i, step in enumerate(steps):
            swhere = f"{where}, step {i + 1} ({(step or {}).get('name', '')})"
            if not isinstance(step, dict) or (("run" in step) == ("uses" in step)):
                problem(swhere, "needs exactly one of run/uses")
                continue
            run = step.get("run")
            if not isinstance(run, str):
                continue
            text = run.replace("\\\n", " ")
            for kind, pat in (("build", r"cmake\s+--build\s+--preset\s+(\S+)"),
                              ("test", r"ctest\s+--preset\s+(\S+)"),
                              ("configure", r"cmake\s+--preset\s+(\S+)")):
                for m in re.finditer(pat, text):
                    word = m.group(1)
                    if word.startswith("${{"):
                        word = re.match(r"\$\{\{[^}]*\}\}", text[m.start(1):]).group(0)
                    for name in expand(word, job):
                        if name not in kinds[kind]:
                            problem(swhere, f"{kind} preset '{name}' is not in CMakePresets.json")
            for m in re.finditer(r"(?:^|[\s;&|(])\.?/?((?:scripts|tests)/[\w./-]+\.(?:sh|py))", text):
                script = os.path.join(root, m.group(1))
                if not os.path.isfile(script):
                    problem(swhere, f"{m.group(1)} does not exist")
                elif m.group(1).endswith(".sh") and not os.access(script, os.X_OK):
                    problem(swhere, f"{m.group(1)} is not executable")
            for m in re.finditer(r"scripts/(?:test|install-deps)\.sh((?:\s+[a-z][a-z-]*)*)", text):
                for stage in m.group(1).split():
                    if stage not in stages:
                        problem(swhere, f"unknown scripts/test.sh stage '{stage}'")
    print(f"ok   {rel}: {len(jobs)} job(s)")

for p in problems:
    print(f"FAIL {p}")
print(f"check_workflows: {len(files)} workflow file(s), {len(problems)} problem(s)")
sys.exit(1 if problems else 0)
PY
