#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Fail if a file in src/ other than src/util/shm.h orders memory by hand.

Memory shared with a driver (rings, inflight region, NVMe queues and
doorbells, mapped BAR areas) is touched only through the accessors of
src/util/shm.h, which hold the memory order each access needs. Which
pointer points at shared memory is not visible to a text check, so the rule
checked is the stricter one that implies it: GCC's __atomic_*/__sync_*
builtins and the volatile qualifier appear nowhere in src/ but shm.h.
Process-private atomics (reference counts, stop flags, statistics) use
<stdatomic.h> types, which cannot be laid over a ring by accident.

Comments and string literals are ignored. Files still being converted are
listed in the allow-list (tests/util/shm_allowlist.txt), one per line with
the reason; an entry for a file that exists and no longer needs it is an
error too, so the list only shrinks (an entry for a file this tree lacks
is only noted: it may come with a branch not merged yet).

    check_shm_access.py SRC_DIR ALLOWLIST
    check_shm_access.py --self-test
"""

import os
import re
import sys

EXEMPT = "util/shm.h"
FORBIDDEN = re.compile(r"\b(__atomic_\w+|__sync_\w+|volatile)\b")
# Comments, then string and character literals (with escapes).
STRIP = re.compile(r"/\*.*?\*/|//[^\n]*|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'",
                   re.S)


def blank(m):
    # Keep newlines so line numbers still match the file.
    return re.sub(r"[^\n]", " ", m.group(0))


def violations(text):
    """Return [(line number, word)] of forbidden uses in C source @text."""
    code = STRIP.sub(blank, text)
    out = []
    for n, line in enumerate(code.split("\n"), 1):
        for m in FORBIDDEN.finditer(line):
            out.append((n, m.group(1)))
    return out


def read_allowlist(path):
    allowed = {}
    errors = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            if len(parts) < 2:
                errors.append("%s:%d: %s has no reason" % (path, n, parts[0]))
                continue
            allowed[parts[0]] = parts[1]
    return allowed, errors


def check(src_dir, allowlist):
    allowed, errors = read_allowlist(allowlist)
    found = set()
    for root, dirs, files in os.walk(src_dir):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src_dir).replace(os.sep, "/")
            if rel == EXEMPT:
                continue
            with open(path, errors="replace") as f:
                bad = violations(f.read())
            if not bad:
                continue
            found.add("src/" + rel)
            if "src/" + rel in allowed:
                continue
            for line, word in bad:
                errors.append("src/%s:%d: %s outside src/util/shm.h (use its accessors "
                              "for shared memory, <stdatomic.h> for private memory)"
                              % (rel, line, word))
    root = os.path.dirname(os.path.abspath(src_dir))
    for path in sorted(set(allowed) - found):
        if os.path.exists(os.path.join(root, path)):
            errors.append("%s: listed in %s but clean now: remove the line"
                          % (path, os.path.basename(allowlist)))
        else:
            # Listed ahead of a merge that brings it, or deleted since.
            print("note: %s is listed but not in this tree" % path)
    for e in errors:
        print(e)
    print("%d file(s) allowed while pending: %s" % (len(found & set(allowed)),
                                                  " ".join(sorted(found & set(allowed)))))
    return 1 if errors else 0


def self_test():
    cases = [
        ("x = __atomic_load_n(&r->idx, __ATOMIC_ACQUIRE);", ["__atomic_load_n"]),
        ("volatile uint32_t *db;", ["volatile"]),
        ("__sync_synchronize();", ["__sync_synchronize"]),
        ("asm volatile(\"\" ::: \"memory\");", ["volatile"]),
        ("/* volatile write cache */ int wce;", []),
        ("// __atomic_load_n is not used here\nint a;", []),
        ("log(\"volatile cache\"); char c = 'v';", []),
        ("int nonvolatile_x; atomic_uint refs; uint16_t v = umdev_shm_ld16(p);", []),
        ("/* multi\n line volatile */\nvolatile int x;", ["volatile"]),
    ]
    ok = True
    for text, want in cases:
        got = [w for _, w in violations(text)]
        if got != want:
            print("self-test: %r: got %r, want %r" % (text, got, want))
            ok = False
    # Line numbers survive stripped multi-line comments.
    if violations("/* a\nb */\n\nvolatile int x;") != [(4, "volatile")]:
        print("self-test: line numbers off")
        ok = False
    print("self-test", "passed" if ok else "FAILED")
    return 0 if ok else 1


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) != 3:
        print(__doc__)
        return 2
    return check(argv[1], argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
