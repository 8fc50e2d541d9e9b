#!/usr/bin/env python3
"""Every measured (workload, stage) of runs 2 and 4-7 whose plan keeps tails under the merged rule
(rule 4), with its latest B / A (eager) and what `patlab plan W [--hopper-tiles] [--take-leaves]`
says of the plans without and with the tails: queries merged, tile buckets, CTAs. Sorted by B / A.
   features.py PATLAB > features.txt   (from this folder; PATLAB: main's tools/patlab)"""
import re
import subprocess
import sys

P = sys.argv[1]
D = ''
rows={}
for run in ('ab_r2.md','ab_r4.md','ab_r5.md','ab_r6.md','ab_r7.md'):
    for l in open(D+run):
        c=[x.strip() for x in l.strip().strip('|').split('|')]
        if len(c)<6 or c[0] in ('workload','---'): continue
        rows[(c[0],c[1])]=(float(c[3]),run)
wls=[]
for f in ('ab_r2.txt','ab_r4.txt','ab_r5.txt','ab_r6.txt','ab_r7.txt'):
    wls+=open(D+f).read().strip().split('|')
def info(wl,h,t):
    out=subprocess.run([P,'plan']+wl.split()+(['--take-leaves'] if t else [])+(['--hopper-tiles'] if h else []),capture_output=True,text=True).stdout
    name=re.search(r'workload\s+(.*)',out).group(1).strip(); shape=re.search(r'shape\s+(\d+/\d+) heads',out).group(1)
    tails=re.search(r'leaf tails\s+(\d+) leaves',out)
    merged=int(re.search(r'queries merged \(> 1 partial\)\s+(\d+)',out).group(1))
    ctas=int(re.search(r'CTAs \(packs x KV heads\)\s+(\d+)',out).group(1))
    bk=out[out.index('tile buckets'):].split('\n\n')[0].split('\n')[3:]
    nb=len([b for b in bk if b.strip() and not b.startswith('CTAs')])
    return name,shape,(int(tails.group(1)) if tails else 0),merged,ctas,nb
seen=set(); res=[]
for wl in wls:
    for h,st in ((False,'pat'),(True,'hopper')):
        if (wl,st) in seen: continue
        seen.add((wl,st))
        a=info(wl,h,False); b=info(wl,h,True)
        if b[2]==0: continue
        key=(f"{a[0]}, {a[1]} heads",st)
        if key not in rows: 
            # name format variants
            continue
        r,run=rows[key]
        res.append((r,st,a[0][:45],a[1],a[3],b[3],a[5],b[5],a[4],b[4],run))
res.sort()
for x in res: print('%.3f %-6s %-45s %-5s merged %4d->%4d buckets %d->%d ctas %5d->%5d %s'%x)
