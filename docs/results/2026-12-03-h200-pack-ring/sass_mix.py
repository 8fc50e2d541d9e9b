#!/usr/bin/env python3
"""Instruction mix of a kernel's main loop, from its SASS: the largest backward branch's body,
counted by kind (static: each instruction once, both sides of every branch).

    cuobjdump -sass -fun MANGLED OBJ > k.sass && python3 sass_mix.py k.sass

cuobjdump is not in Debian's CUDA-less packages; the pip wheel nvidia-cuda-cuobjdump has it (the
numbers in README.md came from build-cuda2/cuda/libpatlab_cuda.a.p/packed_tile.cu.o, sm_90)."""
import collections
import re
import sys

KINDS = [
    ("tensor", r"^HMMA"),
    ("convert", r"^(F2FP|PRMT|SHF\.R\.U32)"),
    ("shared load", r"^(LDS|LDSM)"),
    ("global / copy", r"^(LDG|LDGSTS|STG)"),
    ("barrier", r"^(BAR|DEPBAR|WARPSYNC)"),
    ("fp math", r"^(FMUL|FFMA|FADD|FMNMX|MUFU|FSEL|FSETP)"),
    ("shuffle / vote", r"^(SHFL|VOTE)"),
    ("control", r"^(BRA|BSSY|BSYNC|ISETP|EXIT|PLOP3)"),
]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: sass_mix.py FILE.sass")
    ins = []
    for line in open(sys.argv[1]):
        m = re.match(r"\s*/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if m:
            ins.append((int(m.group(1), 16), m.group(2).strip()))
    where = {a: i for i, (a, _) in enumerate(ins)}
    loops = []
    for i, (a, text) in enumerate(ins):
        m = re.search(r"BRA .*?0x([0-9a-f]+)", text)
        if m and int(m.group(1), 16) < a and int(m.group(1), 16) in where:
            loops.append((where[int(m.group(1), 16)], i))
    if not loops:
        sys.exit("sass_mix.py: no loop in " + sys.argv[1])
    first, last = max(loops, key=lambda x: x[1] - x[0])
    mix = collections.Counter()
    for _, text in ins[first:last + 1]:
        opcode = re.sub(r"^@!?U?P\w+\s+", "", text).split()[0]
        mix[next((kind for kind, rule in KINDS if re.match(rule, opcode)), "integer, address, move")] += 1
    print(f"{last - first + 1} instructions in the loop:", ", ".join(f"{k} {n}" for k, n in mix.most_common()))


if __name__ == "__main__":
    main()
