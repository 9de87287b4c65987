#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""phyllo-monitor, the per-VM monitor a running VM keeps (issue 20), links
libc and json-c only: the libraries phyllo links (libxml2, ICU, libarchive,
libstdc++...) would bring back the relocated pages the exec let go.  Reads
each binary's DT_NEEDED (readelf -d); a sanitizer build's runtimes are
allowed.  phyllo itself must fail the same check, so that the check bites.

  monitor-needed.py PHYLLO_MONITOR PHYLLO
"""
import re
import subprocess
import sys

ALLOWED = re.compile(r"^(libc\.so\.\d+|libjson-c\.so\.\d+|ld-linux-x86-64\.so\.\d+|lib(a|ub|l|t)san\.so\.\d+)$")


def needed(path):
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def main():
    monitor, phyllo = sys.argv[1], sys.argv[2]
    print("1..3")
    libs = needed(monitor)
    extra = [l for l in libs if not ALLOWED.match(l)]
    print(("ok" if not extra else "not ok") + f" 1 - {monitor} needs only libc and json-c" +
          (f" (also: {', '.join(extra)})" if extra else f" ({', '.join(libs)})"))
    print(("ok" if any(l.startswith("libjson-c") for l in libs) else "not ok") +
          " 2 - the DT_NEEDED list was read (json-c is there)")
    fat = [l for l in needed(phyllo) if not ALLOWED.match(l)]
    print(("ok" if fat else "not ok") + f" 3 - the same check refuses phyllo ({', '.join(fat[:4])}...)")
    return 0


sys.exit(main())
