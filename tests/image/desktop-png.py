#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# tests/image/desktop.sh: what a screenshot (a PNG from QEMU's screendump,
# 8-bit RGB or RGBA, not interlaced) shows, as one line of key=value:
#   size=WxH colours=N (distinct, counted up to 100000) top=F (the share of
#   the commonest colour) light=F (the share of near-white pixels: GTK's
#   Adwaita window, which neither GDM nor GNOME Shell's own screens are)
import struct
import sys
import zlib


def pixels(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        sys.exit(f"{path}: not a PNG")
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                sys.exit(f"{path}: depth {depth}, colour type {ctype}, interlace {interlace}: not read here")
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += n + 12
    raw, stride, prev, out = zlib.decompress(idat), w * bpp, bytearray(w * bpp), []
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out.append(bytes(line))
        prev = line
    return w, h, bpp, out


w, h, bpp, rows = pixels(sys.argv[1])
count, light = {}, 0
for row in rows:
    for i in range(0, len(row), bpp):
        px = row[i:i + 3]
        if len(count) < 100000 or px in count:
            count[px] = count.get(px, 0) + 1
        if min(px) >= 0xe0:
            light += 1
print(f"size={w}x{h} colours={len(count)} top={max(count.values()) / (w * h):.3f} light={light / (w * h):.3f}")
