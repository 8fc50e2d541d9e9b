#!/usr/bin/env python3
"""The masked pack-kernel instances (cuda/sparse/span_tile.cu) in two PTX files, before and
after a change: per 16-bit __half instance (D, M, N, ring stages), the PTX instructions of the
kernel, of its tile loop (the longest backward branch's body) and the integer divisions and
remainders in that loop. PTX, not SASS: this workstation has no disassembler; a div.s32 by a
value not known at compile time becomes a sequence of SASS instructions (a reciprocal, multiplies
and corrections), one line here.

    python3 ptx_count.py BEFORE.ptx AFTER.ptx
"""
import re
import sys


def instructions(lines):
    """The PTX instruction lines of `lines` (no directives, labels, braces or comments)."""
    return [l for l in lines if l.strip() and not l.strip().startswith(("//", ".", "$", "{", "}", "(", ")"))]


def kernels(path):
    """{(type, D, M, N, stages): (kernel instructions, tile-loop instructions, div/rem in the loop)}."""
    text = open(path).read()
    starts = [m.start() for m in re.finditer(r"\.entry ", text)] + [len(text)]
    out = {}
    for a, b in zip(starts, starts[1:]):
        body = text[a:b]
        m = re.search(r"pack_attention_kernelI(\w+?)S2_Li(\d+)ELi(\d+)ELi(\d+)ELi(\d+)E", body)
        if not m:
            continue
        key = ("half" if m.group(1) == "6__half" else "bf16",) + tuple(int(m.group(i)) for i in range(2, 6))
        lines = body.splitlines()
        labels = {l.strip().rstrip(":"): i for i, l in enumerate(lines) if re.fullmatch(r"\s*\$L\w+:\s*", l)}
        loop = (0, 0)
        for i, l in enumerate(lines):
            j = re.search(r"bra(?:\.uni)?\s+(\$L\w+);", l)
            if j and j.group(1) in labels and labels[j.group(1)] < i and i - labels[j.group(1)] > loop[1] - loop[0]:
                loop = (labels[j.group(1)], i)
        body_lines = lines[loop[0]:loop[1] + 1]
        out[key] = (len(instructions(lines)), len(instructions(body_lines)),
                    sum(bool(re.search(r"\b(div|rem)\.", l)) for l in body_lines))
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: ptx_count.py BEFORE.ptx AFTER.ptx")
    before, after = kernels(sys.argv[1]), kernels(sys.argv[2])
    print("| instance (D, M, N, stages) | kernel PTX | tile loop PTX | div/rem in the loop |")
    print("|---|---:|---:|---:|")
    for k in sorted(before):
        if k[0] == "half" and k in after:
            b, a = before[k], after[k]
            print(f"| {k[1]}, {k[2]}, {k[3]}, {k[4]} | {b[0]} -> {a[0]} | {b[1]} -> {a[1]} | {b[2]} -> {a[2]} |")


if __name__ == "__main__":
    main()
