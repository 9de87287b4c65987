#!/usr/bin/env python3
# Builds bundles the way an attacker would, for bundle-untrusted.sh
# (format: docs/storage.md, "Bundles"):
#   bundle-craft.py bundle OUT DIR [--v1] [--bad-sha=MEMBER] MEMBER...
#       the members of DIR, in order, then a manifest.json (version 2, or 1
#       with --v1; --bad-sha writes a wrong sha256 without hashing anything),
#       as a pax tar made by GNU tar --sparse (holes stay holes), zstd'd.
#   bundle-craft.py zeros OUT NAME SIZE
#       one member NAME of SIZE zero bytes stored as data (not a hole), no
#       manifest: a zstd bomb of a few KiB that unpacks to SIZE.
import hashlib
import json
import os
import struct
import subprocess
import sys
import tarfile


def regions(path):
    """The data regions GNU tar stores (SEEK_DATA/SEEK_HOLE when the file is sparse)."""
    st = os.stat(path)
    size = st.st_size
    if size == 0:
        return []
    # GNU tar's ST_IS_SPARSE: fewer blocks than the size needs.
    if st.st_blocks >= (size + 511) // 512:
        return [(0, size)]
    out = []
    with open(path, 'rb') as f:
        fd = f.fileno()
        off = 0
        while off < size:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            h = os.lseek(fd, d, os.SEEK_HOLE)
            out.append((d, h - d))
            off = h
    return out


def member(path, name, v1, bad):
    size = os.stat(path).st_size
    if bad:
        return {"path": name, "size": size, "data": 0, "sha256": "0" * 64, "sparse": "0" * 64}
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        if v1:  # the whole logical content, holes as zeros
            while True:
                b = f.read(1 << 20)
                if not b:
                    break
                h.update(b)
            return {"path": name, "size": size, "sha256": h.hexdigest()}
        # Version 2: the 4 KiB pieces (aligned to the file) that are not all
        # zeros, in order; their map, adjacent pieces merged, as LE u64 pairs.
        m = hashlib.sha256()
        run = None
        n = 0
        for off, ln in regions(path):
            f.seek(off)
            pos, end = off, off + ln
            while pos < end:
                k = min(4096 - pos % 4096, end - pos)
                piece = f.read(k)
                if piece.count(0) != len(piece):
                    h.update(piece)
                    n += k
                    if run and run[0] + run[1] == pos:
                        run[1] += k
                    else:
                        if run:
                            m.update(struct.pack('<QQ', *run))
                        run = [pos, k]
                pos += k
        if run:
            m.update(struct.pack('<QQ', *run))
    return {"path": name, "size": size, "data": n, "sha256": h.hexdigest(), "sparse": m.hexdigest()}


def bundle(out, d, args):
    v1 = '--v1' in args
    bad = [a[len('--bad-sha='):] for a in args if a.startswith('--bad-sha=')]
    names = [a for a in args if not a.startswith('--')]
    man = {"format": "phyllome-bundle", "version": 1 if v1 else 2, "name": "crafted",
           "members": [member(os.path.join(d, n), n, v1, n in bad) for n in names]}
    with open(os.path.join(d, 'manifest.json'), 'w') as f:
        json.dump(man, f)
    with open(out, 'wb') as o:
        tar = subprocess.Popen(['tar', '--sparse', '--format=pax', '-C', d, '-cf', '-'] + names + ['manifest.json'],
                               stdout=subprocess.PIPE)
        subprocess.run(['zstd', '-q', '-c'], stdin=tar.stdout, stdout=o, check=True)
        if tar.wait() != 0:
            sys.exit('tar failed')


def zeros(out, name, size):
    """The tar stream as zstd frames: the header, then one frame of 64 MiB of
    zeros repeated (compressed once), then the rest; SIZE is a multiple of 512."""
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mode = 0o600
    head = ti.tobuf(tarfile.PAX_FORMAT)

    def z(b):
        return subprocess.run(['zstd', '-q', '-1', '-c'], input=b, stdout=subprocess.PIPE, check=True).stdout
    chunk = 64 << 20
    with open(out, 'wb') as o:
        o.write(z(head))
        frame = z(bytes(chunk))
        for _ in range(size // chunk):
            o.write(frame)
        o.write(z(bytes(size % chunk + 1024)))  # the rest, then the two zero blocks that end a tar


if __name__ == '__main__':
    if sys.argv[1] == 'bundle':
        bundle(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif sys.argv[1] == 'zeros':
        zeros(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit('usage: bundle-craft.py bundle OUT DIR [--v1] [--bad-sha=M] MEMBER... | zeros OUT NAME SIZE')
