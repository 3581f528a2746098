#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fails when a public name of evio is missing from docs/api.md.
#
#   scripts/check_api_docs.sh            check (exit 1 and list what is missing)
#   scripts/check_api_docs.sh --list     print every public name found, one per line
#
# Public names (a pragmatic scanner, not a C++ parser): everything declared in namespace evio but
# outside any `detail` namespace, in every header under include/evio/ (detail headers included:
# e.g. evio::backend_kind lives in detail/backend.hpp):
#   - classes, structs, enums and type aliases (`using x = ...`);
#   - free functions;
#   - member functions, data members, nested types and aliases in public sections
#     (constructors, destructors and operators are not listed);
#   - enumerators;
#   - the EVIO_* macros #defined in include/evio/*.hpp (config and version knobs).
# A name counts as documented when it appears as a word inside `backticks` in docs/api.md.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(command -v /usr/bin/python3 || command -v python3 || true)"
if [ -z "$py" ]; then
    echo "check_api_docs.sh: python3 is required" >&2
    exit 2
fi

exec "$py" - "$root" "$@" <<'PY'
import os
import re
import sys

root = sys.argv[1]
list_only = "--list" in sys.argv[2:]
inc = os.path.join(root, "include", "evio")


def strip(text):
    """Removes comments, string and character literal contents; keeps line structure."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif c in "\"'":
            # A digit separator (1'000) is not a character literal.
            if c == "'" and i > 0 and text[i - 1].isalnum():
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def head_name_of_function(head):
    """The function name in a declaration head, or None (operators, ctors handled by caller)."""
    depth, cut = 0, None
    for k, ch in enumerate(head):
        if ch in "<":
            depth += 1
        elif ch in ">" and depth > 0:
            depth -= 1
        elif ch == "(" and depth == 0:
            cut = k
            break
    if cut is None:
        return None
    before = head[:cut].rstrip()
    if re.search(r"\boperator\b", before):
        return "operator"
    if re.search(r"::\s*~?\w+$", before):
        return None  # an out-of-class definition (reactor::destroy): declared in the class
    m = re.search(r"(~?\w+)$", before)
    return m.group(1) if m else None


names = {}  # name -> first "file: kind"


def add(name, where):
    names.setdefault(name, where)


def scan(path):
    rel = os.path.relpath(path, root)
    raw = open(path, encoding="utf-8").read()
    text = strip(raw)
    # Preprocessor: public knobs from the top-level headers; then drop directives.
    lines = []
    for line in text.split("\n"):
        if line.lstrip().startswith("#"):
            m = re.match(r"\s*#\s*define\s+(EVIO_\w+)\b(?!\()", line)
            if m and os.path.dirname(path) == inc:
                add(m.group(1), f"{rel}: macro")
            lines.append("")
        else:
            lines.append(line)
    text = "\n".join(lines)

    # Scope stack entries: (kind, name, access, public)
    stack = [("file", "", "public", False)]
    head = ""
    pending_template = False
    i = 0
    while i < len(text):
        c = text[i]
        kind, sname, access, public = stack[-1]
        if c == "{" and head.count("(") > head.count(")"):
            # A braced initializer inside parentheses (f(token{}), x_(T{})): not a scope.
            depth, j = 0, i
            while j < len(text):
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            head += "{}"
            i = j + 1
            continue
        if c == "{":
            h = " ".join(head.split())
            h_nt = re.sub(r"^template\s*<.*?>\s*", "", h)
            new = None
            m_ns = re.match(r"^(?:inline\s+)?namespace\s*([\w:]*)$", h)
            m_enum = re.search(r"\benum\s+(?:class\s+|struct\s+)?(\w+)\s*(?::\s*[\w:]+)?$", h)
            m_cls = re.search(r"\b(class|struct|union)\s+(?:\[\[[^\]]*\]\]\s*)?(\w+)\s*(?:final\s*)?"
                              r"(?::[^{]*)?$", h_nt)
            in_type_scope = kind in ("file", "namespace", "class")
            if m_ns and kind in ("file", "namespace"):
                nm = m_ns.group(1)
                parts = nm.split("::") if nm else []
                if kind == "file":
                    pub = bool(parts) and parts[0] == "evio" and "detail" not in parts
                else:
                    pub = public and "detail" not in parts
                new = ("namespace", nm, "public", pub)
            elif m_enum and in_type_scope and "(" not in h:
                nm = m_enum.group(1)
                pub = public and access == "public"
                if pub:
                    add(nm, f"{rel}: enum")
                new = ("enum", nm, "public", pub)
            elif m_cls and in_type_scope and "(" not in h_nt and "=" not in h_nt:
                key, nm = m_cls.group(1), m_cls.group(2)
                pub = public and access == "public"
                if pub:
                    add(nm, f"{rel}: {key}")
                new = ("class", nm, "public" if key != "class" else "private", pub)
            else:
                # A function body, initializer or lambda: its name is the declaration's.
                if public and access == "public" and kind in ("namespace", "class"):
                    fn = head_name_of_function(h_nt)
                    if fn and fn != "operator" and not fn.startswith("~") and fn != sname \
                            and fn not in ("requires", "decltype", "noexcept"):
                        add(fn, f"{rel}: function")
                new = ("other", "", "public", False)
            stack.append(new)
            head = ""
        elif c == "}":
            if len(stack) > 1:
                stack.pop()
            head = ""
        elif c == ";":
            h = " ".join(head.split())
            if public and access == "public" and kind in ("namespace", "class"):
                h_nt = re.sub(r"^template\s*<.*?>\s*", "", h)
                m_using = re.match(r"^using\s+(\w+)\s*=", h_nt)
                if m_using:
                    add(m_using.group(1), f"{rel}: alias")
                elif re.search(r"\boperator\b", h_nt):
                    pass  # operators are documented with their type, not by name
                elif h_nt.startswith(("using ", "friend ", "static_assert", "template")):
                    pass
                elif re.match(r"^(class|struct)\s+\w+$", h_nt):
                    pass  # forward declaration
                elif "(" in h_nt.split("=")[0]:
                    fn = head_name_of_function(h_nt)
                    if fn and fn != "operator" and not fn.startswith("~") and fn != sname:
                        add(fn, f"{rel}: function")
                elif kind == "class" and h_nt:
                    m = re.match(r"^.*?\b(\w+)\s*(?:\[[^\]]*\])?\s*(?:=.*|\{.*)?$", h_nt.split("=")[0].strip())
                    if m:
                        add(m.group(1), f"{rel}: member")
            head = ""
        elif c == ":" and kind == "class" and re.fullmatch(r"\s*(public|protected|private)\s*", head):
            access = head.strip()
            stack[-1] = (kind, sname, access, public)
            head = ""
        elif kind == "enum" and c == ",":
            m = re.match(r"\s*(\w+)", head)
            if m and public:
                add(m.group(1), f"{rel}: enumerator")
            head = ""
        else:
            head += c
        i += 1
        if kind == "enum" and i < len(text) and text[i] == "}":
            m = re.match(r"\s*(\w+)", head)
            if m and public:
                add(m.group(1), f"{rel}: enumerator")


for dirpath, _, files in os.walk(inc):
    for f in sorted(files):
        if f.endswith(".hpp"):
            scan(os.path.join(dirpath, f))

if list_only:
    for n in sorted(names):
        print(f"{n}\t{names[n]}")
    sys.exit(0)

doc_path = os.path.join(root, "docs", "api.md")
if not os.path.exists(doc_path):
    print("check_api_docs: docs/api.md does not exist")
    sys.exit(1)
doc = open(doc_path, encoding="utf-8").read()
code_spans = " ".join(re.findall(r"`([^`\n]+)`", doc))
missing = [n for n in sorted(names) if not re.search(r"(?<![\w])" + re.escape(n) + r"(?![\w])", code_spans)]
print(f"check_api_docs: {len(names)} public names in include/evio, {len(missing)} missing from docs/api.md")
for n in missing:
    print(f"  missing: {n}  ({names[n]})")
sys.exit(1 if missing else 0)
PY
