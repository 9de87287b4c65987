#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""libxml2, libarchive and nettle are loaded on first use (src/common/lazylib.c,
issue 20): phyllo and phyllod do not link them, nor ICU or libstdc++ (which
libxml2 brings), so a command that reads no XML and no archive never maps
them.  Reads DT_NEEDED (readelf -d) and follows it through the libraries
(ldd's paths); a sanitizer build's runtimes and what they need are left
out.  phyllome-catalog-worker links libosinfo, hence libxml2, and must fail
the same check, so that the check bites.  No binary exports the forwarders
(they would catch libosinfo's own calls into libxml2).  Then phyllo itself
under LD_DEBUG=files: `list` maps neither library, an import maps the one it
needs, and a library missing or not the right one is an error naming it and
its Debian package, with nothing left in the home.

  lazy-libs.py PHYLLO PHYLLOD CATALOG_WORKER
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

FAT = re.compile(r"^(libxml2|libarchive|libnettle|libicu\w*|libstdc\+\+)\.so")
SANITIZER = re.compile(r"^lib(a|ub|l|t)san\.so")

n = 0
failed = False


def check(ok, what):
    global n, failed
    n += 1
    failed |= not ok
    print(("ok" if ok else "not ok") + f" {n} - {what}")


def needed(path):
    out = subprocess.run(["readelf", "-d", path], check=True, capture_output=True, text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def closure(binary, sanitizers=False):
    """Every library binary loads at start, following DT_NEEDED, without the
    sanitizer runtimes' own (sanitizers=True: only those)."""
    ldd = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    where = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
    seen = set()
    todo = [l for l in needed(binary) if bool(SANITIZER.match(l)) == sanitizers]
    while todo:
        lib = todo.pop()
        if lib in seen or (SANITIZER.match(lib) and not sanitizers):
            continue
        seen.add(lib)
        if lib in where:
            todo += needed(where[lib])
    return seen


def exported(binary):
    out = subprocess.run(["nm", "-D", "--defined-only", binary], check=True, capture_output=True, text=True).stdout
    return [l.split()[-1] for l in out.splitlines() if re.search(r" (xml[A-Z]\w*|archive_\w+)(@.*)?$", l)]


def run(argv, home, libpath=None):
    env = dict(os.environ, PHYLLOME_HOME=home, LD_DEBUG="files")
    env.pop("LD_LIBRARY_PATH", None)
    if libpath:
        env["LD_LIBRARY_PATH"] = libpath
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    loaded = set(re.findall(r"file=(\S+?) \[\d+\];\s+(?:needed|dynamically loaded)", p.stderr))
    said = "\n".join(l for l in p.stderr.splitlines() if not re.match(r"^\s*\d+:", l))
    return p.returncode, loaded, said


def tree(d):
    return sorted(os.path.relpath(os.path.join(r, f), d) for r, ds, fs in os.walk(d) for f in ds + fs)


def main():
    phyllo, phyllod, worker = sys.argv[1:4]
    for b in (phyllo, phyllod):
        fat = [l for l in needed(b) if FAT.match(l)]
        check(not fat, f"{os.path.basename(b)}'s DT_NEEDED has no libxml2, libarchive, nettle, ICU, libstdc++"
              + (f" (has {', '.join(fat)})" if fat else f" ({', '.join(needed(b))})"))
        # libmicrohttpd brings GnuTLS, and GnuTLS nettle: phyllod maps nettle anyway
        fat = sorted(l for l in closure(b) if FAT.match(l) and not (b == phyllod and l.startswith("libnettle")))
        check(not fat, f"nor does any library {os.path.basename(b)} loads at start" +
              (f" ({', '.join(fat)})" if fat else ""))
    fat = sorted(l for l in closure(worker) if FAT.match(l))
    check("libxml2.so.2" in fat, f"the same check refuses phyllome-catalog-worker (libosinfo: {', '.join(fat)})")
    for b in (phyllo, phyllod, worker):
        ex = exported(b)
        check(not ex, f"{os.path.basename(b)} exports none of the forwarders" + (f" ({', '.join(ex[:5])})" if ex else ""))

    tmp = tempfile.mkdtemp(prefix="phyllome-lazy-libs.")
    try:
        home = os.path.join(tmp, "home")
        os.makedirs(os.path.join(home, "vms"))
        xml = os.path.join(tmp, "d.xml")
        with open(xml, "w") as f:
            f.write("<domain type='kvm'>\n  <name>lazy</name>\n</domain>\n")
        junk = os.path.join(tmp, "junk.bundle")
        with open(junk, "w") as f:
            f.write("not an archive\n")

        rc, loaded, said = run([phyllo, "list"], home)
        loaded -= closure(phyllo, sanitizers=True)      # UBSan's runtime needs libstdc++
        check(rc == 0 and not any(FAT.match(l) for l in loaded),
              f"phyllo list maps neither library (rc {rc}; loaded {', '.join(sorted(loaded))})")
        rc, loaded, said = run([phyllo, "import-libvirt", xml], home)
        check(rc == 2 and "libxml2.so.2" in loaded and "has no <memory>" in said,
              f"phyllo import-libvirt loads libxml2 and parses: rc {rc}, {said.strip()!r}")
        check("libarchive.so.13" not in loaded, "and not libarchive")
        rc, loaded, said = run([phyllo, "import", junk], home)
        check(rc == 2 and "libarchive.so.13" in loaded and "libnettle.so.8" in loaded and "bundle" in said,
              f"phyllo import loads libarchive and nettle and reads: rc {rc}, {said.strip()!r}")

        # A library that is missing (an empty file found first) or is another one.
        fake = os.path.join(tmp, "fake")
        os.makedirs(fake)
        open(os.path.join(fake, "libxml2.so.2"), "w").close()
        ldd = subprocess.run(["ldd", phyllo], check=True, capture_output=True, text=True).stdout
        other = re.search(r"libc\.so\S* => (\S+)", ldd).group(1)
        os.symlink(other, os.path.join(fake, "libarchive.so.13"))
        before = tree(home)
        rc, loaded, said = run([phyllo, "import-libvirt", xml], home, fake)
        check(rc == 1 and "cannot load libxml2.so.2" in said and "Debian package libxml2" in said,
              f"libxml2 missing: rc {rc}, {said.strip()!r}")
        rc, loaded, said = run([phyllo, "import", junk], home, fake)
        check(rc == 1 and re.search(r"libarchive\.so\.13 lacks archive_\w+", said) and
              "Debian package libarchive13" in said, f"libarchive not the right library: rc {rc}, {said.strip()!r}")
        rc, loaded, said = run([phyllo, "import-ova", junk], home, fake)
        check(rc == 1 and "libarchive13" in said, f"import-ova refuses at once: rc {rc}, {said.strip()!r}")
        after = tree(home)
        check(after == before, f"nothing left in the home ({', '.join(sorted(set(after) - set(before))) or 'as before'})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"1..{n}")
    return 1 if failed else 0


sys.exit(main())
