#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""phyllo-monitor, the per-VM monitor a running VM keeps (issue 20), links
libc only (json-c is linked in): the libraries phyllod links (libmicrohttpd, GnuTLS...)
would bring back the relocated pages the exec let go.  Reads each binary's
DT_NEEDED (readelf -d); a sanitizer build's runtimes are allowed.  phyllod
must fail the same check, so that the check bites (phyllo needs only libc
too since libxml2, libarchive and nettle are opened on first
use: tests/lazy-libs.py).

  monitor-needed.py PHYLLO_MONITOR PHYLLOD
"""
import re
import subprocess
import sys

ALLOWED = re.compile(r"^(libc\.so\.\d+|ld-linux-x86-64\.so\.\d+|lib(a|ub|l|t)san\.so\.\d+)$")


def needed(path):
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def main():
    monitor, phyllod = sys.argv[1], sys.argv[2]
    print("1..3")
    libs = needed(monitor)
    extra = [l for l in libs if not ALLOWED.match(l)]
    print(("ok" if not extra else "not ok") + f" 1 - {monitor} needs only libc" +
          (f" (also: {', '.join(extra)})" if extra else f" ({', '.join(libs)})"))
    print(("ok" if any(l.startswith("libc.so") for l in libs) else "not ok") +
          " 2 - the DT_NEEDED list was read (libc is there)")
    fat = [l for l in needed(phyllod) if not ALLOWED.match(l)]
    print(("ok" if fat else "not ok") + f" 3 - the same check refuses phyllod ({', '.join(fat[:4])})")
    return 0


sys.exit(main())
