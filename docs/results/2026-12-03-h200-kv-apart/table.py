"""Run N's table: stage 7 of each binary (step 2) and cuDNN (step 4), same call.
    python3 table.py rN base apart"""
import csv
import json
import re
import sys

d = sys.argv[1]
names = sys.argv[2:]
try:
    cud = {r['key']: float(r['time_us']) for r in csv.DictReader(open(d + '/cudnn/suite.csv'))
           if r['name'] == 'sdpa-cudnn'}
except FileNotFoundError:
    cud = {}
order = [line.split(': ', 2)[2].strip() for line in open(d + '/bench.log') if line.startswith('exit 0')]
seen = []
for w in order:
    if w not in seen:
        seen.append(w)


def slug(s):
    return re.sub(r'_+', '_', re.sub(r'[^a-z0-9]', '_', s + '\n'))


def result(w, b):
    try:
        for line in open(f"{d}/w-{slug(w + ' ')}-{b}.jsonl"):
            o = json.loads(line)
            if o.get('table') == 'results':
                return o
    except FileNotFoundError:
        return None
    return None


print('| workload | cuDNN | ' + ' | '.join(f'{b} eager / graph (% copy)' for b in names)
      + ' | ' + ' | '.join(f'cuDNN / {b}' for b in names) + f' | {names[0]} / {names[-1]} eager |')
print('| --- |' + ' ---: |' * (1 + 2 * len(names) + 1))
for w in seen:
    c = cud.get(w)
    rs = [result(w, b) for b in names]
    cells = [w.replace('--tree ', '').replace('--heads ', ''), f'{c:.1f}' if c else '-']
    cells += [f"{r['time_us']:.1f} / {r['graph_us']:.1f} ({r['pct_copy']:.1f})" if r else '-' for r in rs]
    cells += [f"{c / r['time_us']:.3f}" if c and r else '-' for r in rs]
    cells.append(f"{rs[0]['time_us'] / rs[-1]['time_us']:.3f}" if rs[0] and rs[-1] else '-')
    print('| ' + ' | '.join(cells) + ' |')
