#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Validate the libvirt domain XML in docs/libvirt.md with libvirt's own schema.

Each ```xml block that is a <domain> is completed where the doc elides
parts with '...' (a name, memory and os, which the examples leave out) and
checked with virt-xml-validate (Debian's libvirt-clients). Fragments that
are not whole domains are checked to be well-formed XML.
"""
import re
import subprocess
import sys
import tempfile
import xml.dom.minidom

FILL = ("<name>vm1</name><memory unit='GiB'>1</memory>"
        "<os><type arch='x86_64' machine='q35'>hvm</type></os>")


def main(path):
    text = open(path, encoding="utf-8").read()
    blocks = re.findall(r"```xml\n(.*?)```", text, re.S)
    domains = 0
    for i, block in enumerate(blocks):
        if not block.lstrip().startswith("<domain"):
            # a fragment: wrap it so a namespace prefix may appear unbound
            xml.dom.minidom.parseString(
                "<r xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>%s</r>" % block)
            continue
        domains += 1
        lines = block.split("\n")
        filled, done = [], False
        for line in lines:
            if line.strip() == "...":
                if not done:
                    filled.append("  " + FILL)
                    done = True
                continue
            filled.append(line)
        full = "\n".join(filled)
        if not done:
            full = full.replace(">", ">" + FILL, 1)
        with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
            f.write(full)
            f.flush()
            r = subprocess.run(["virt-xml-validate", f.name, "domain"],
                               capture_output=True, text=True)
        if r.returncode != 0:
            print("block %d of %s does not validate:\n%s\n%s" % (i, path, full, r.stdout + r.stderr))
            return 1
    if domains == 0:
        print("no <domain> examples found in %s" % path)
        return 1
    print("%d domain example(s) validate" % domains)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
