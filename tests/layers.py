#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The layer check (docs/architecture.md, "Layers").

Reads the folder order from the line "layers (low to high): ..." of
docs/architecture.md, then `nm` of every object file the build compiled from
src/<folder>/*.c, and fails (TAP "not ok") on every symbol a folder uses that
is defined in a folder of a higher layer, or in another folder of the same
layer, naming the symbol and the two source files.  A line "reserved to
FOLDER and above: sym sym ..." names functions of a lower folder that only
FOLDER and the layers above it may call (the VM lifecycle is the operations
layer's: store does the disk work and ops starts and stops the VM).

  tests/layers.py BUILDDIR DOCS/architecture.md
  tests/layers.py --self-test     (a back edge built on purpose must be found)
"""
import json
import os
import re
import subprocess
import sys
import tempfile

MARK = "layers (low to high):"
RESERVED = re.compile(r"reserved to (\w+) and above:\s*(.*)")


def read_order(doc):
    """'common < host < dev, net < cli' -> {'common': 0, 'host': 1, 'dev': 2, 'net': 2, 'cli': 3}"""
    with open(doc, encoding="utf-8") as f:
        for line in f:
            if MARK in line:
                spec = line.split(MARK, 1)[1].strip().strip("`").strip()
                rank = {}
                for i, level in enumerate(spec.split("<")):
                    for name in level.split(","):
                        name = name.strip()
                        if name:
                            rank[name] = i
                return rank
    sys.exit(f"{doc}: no line with '{MARK}' (the folder order the check enforces)")


def read_reserved(doc):
    """'reserved to ops and above: a b' lines -> {'a': 'ops', 'b': 'ops'}"""
    out = {}
    with open(doc, encoding="utf-8") as f:
        for line in f:
            m = RESERVED.search(line.strip().strip("`"))
            if m:
                for sym in m.group(2).replace(",", " ").split():
                    out[sym.strip("`")] = m.group(1)
    return out


def objects(builddir):
    """Object files compiled from src/<folder>/*.c: {object path: 'src/<folder>/<file>.c'},
    from the build's compile_commands.json (each object and its source)."""
    with open(os.path.join(builddir, "compile_commands.json"), encoding="utf-8") as f:
        commands = json.load(f)
    found = {}
    for c in commands:
        src = os.path.normpath(os.path.join(c["directory"], c["file"]))
        obj = os.path.join(c["directory"], c["output"])
        parts = src.split(os.sep)
        if len(parts) >= 3 and parts[-3] == "src" and os.path.exists(obj):
            found[obj] = "/".join(parts[-3:])
    return found


def symbols(objs):
    """{object: (defined global symbols, undefined symbols)}, from one nm run."""
    out = subprocess.run(["nm", "-P", "-A"] + list(objs), check=True, capture_output=True, text=True).stdout
    result = {o: (set(), set()) for o in objs}
    for line in out.splitlines():
        # "path/obj.o: name type [value size]"
        head, sep, rest = line.partition(": ")
        parts = rest.split()
        if not sep or head not in result or len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        defined, used = result[head]
        if kind in ("U", "w", "v"):
            used.add(name)
        elif kind.isupper():
            defined.add(name)
    return result


def check(builddir, doc):
    rank = read_order(doc)
    reserved = read_reserved(doc)
    objs = objects(builddir)
    if not objs:
        sys.exit(f"{builddir}: no object files compiled from src/ (build first)")
    where = {}          # symbol -> source file defining it
    uses = {}           # source file -> symbols it uses
    table = symbols(objs)
    for obj, src in objs.items():
        defined, used = table[obj]
        for s in defined:
            where.setdefault(s, src)
        uses.setdefault(src, set()).update(used)

    def folder(src):
        return src.split("/")[1]

    folders = sorted({folder(s) for s in uses}, key=lambda f: (rank.get(f, -1), f))
    print(f"1..{len(folders)}")
    failed = 0
    for n, f in enumerate(folders, 1):
        if f not in rank:
            print(f"not ok {n} - src/{f}/ is not in the order of {doc} ('{MARK}' line)")
            failed += 1
            continue
        bad = []
        for src in sorted(s for s in uses if folder(s) == f):
            for sym in sorted(uses[src]):
                to = where.get(sym)
                if not to or folder(to) == f:
                    continue
                g = folder(to)
                if g not in rank:
                    bad.append(f"{src} uses {sym} from {to} (src/{g}/ is not in the order)")
                elif rank[g] > rank[f]:
                    bad.append(f"{src} uses {sym} from {to}: {g} is above {f}")
                elif rank[g] == rank[f]:
                    bad.append(f"{src} uses {sym} from {to}: {g} and {f} are one layer and may not call each other")
                elif sym in reserved and rank.get(reserved[sym], -1) > rank[f]:
                    bad.append(f"{src} uses {sym} from {to}: it is reserved to {reserved[sym]} and above")
        if bad:
            failed += 1
            print(f"not ok {n} - src/{f}/ calls upward ({len(bad)} uses)")
            for b in bad:
                print(f"# {b}")
        else:
            print(f"ok {n} - src/{f}/ uses only its own layer's folder and those below")
    return 1 if failed else 0


def self_test():
    """Builds src/low calling src/high and checks that the check reports it, then the reverse passes."""
    with tempfile.TemporaryDirectory() as tmp:
        p = os.path.join(tmp, "t.p")
        os.mkdir(p)
        doc = os.path.join(tmp, "arch.md")
        with open(doc, "w") as f:
            f.write(f"{MARK} low < mid < high\nreserved to high and above: low_life\n")

        cmds = []

        def build(path, code):
            c = os.path.join(tmp, path)
            os.makedirs(os.path.dirname(c), exist_ok=True)
            with open(c, "w") as f:
                f.write(code)
            out = os.path.join("t.p", path.replace("/", "_") + ".o")
            subprocess.run(["cc", "-c", "-o", os.path.join(tmp, out), c], check=True)
            if not any(e["file"] == path for e in cmds):
                cmds.append({"directory": tmp, "file": path, "output": out})
            with open(os.path.join(tmp, "compile_commands.json"), "w") as f:
                json.dump(cmds, f)

        build("src/high/b.c", "int high_fn(void); int high_fn(void) { return 1; }\n")
        build("src/low/a.c", "int high_fn(void); int low_fn(void); int low_fn(void) { return high_fn(); }\n")
        proc = subprocess.run([sys.executable, __file__, tmp, doc], capture_output=True, text=True)
        want = "# src/low/a.c uses high_fn from src/high/b.c: high is above low"
        print("1..3")
        ok1 = proc.returncode != 0 and want in proc.stdout
        print(f"{'ok' if ok1 else 'not ok'} 1 - a back edge fails and is named")
        if not ok1:
            print("# " + proc.stdout.replace("\n", "\n# "))
        build("src/low/a.c", "int low_fn(void); int low_fn(void) { return 1; }\n")
        build("src/high/b.c", "int low_fn(void); int high_fn(void); int high_fn(void) { return low_fn(); }\n")
        proc = subprocess.run([sys.executable, __file__, tmp, doc], capture_output=True, text=True)
        ok2 = proc.returncode == 0
        print(f"{'ok' if ok2 else 'not ok'} 2 - a downward edge passes")
        if not ok2:
            print("# " + proc.stdout.replace("\n", "\n# "))
        build("src/low/a.c", "int low_fn(void); int low_life(void); int low_fn(void) { return 1; } "
              "int low_life(void) { return 2; }\n")
        build("src/mid/c.c", "int low_life(void); int mid_fn(void); int mid_fn(void) { return low_life(); }\n")
        proc = subprocess.run([sys.executable, __file__, tmp, doc], capture_output=True, text=True)
        want = "# src/mid/c.c uses low_life from src/low/a.c: it is reserved to high and above"
        ok3 = proc.returncode != 0 and want in proc.stdout
        print(f"{'ok' if ok3 else 'not ok'} 3 - a reserved function called below its folder fails and is named")
        if not ok3:
            print("# " + proc.stdout.replace("\n", "\n# "))
        return 0 if ok1 and ok2 and ok3 else 1


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(check(sys.argv[1], sys.argv[2]))
