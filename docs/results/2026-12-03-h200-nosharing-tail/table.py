# Run N's table: cuDNN (suite.csv) against each stage-7 variant of step 2, same call:
#   python3 table.py rN patlab-p0 _max_kv_tile_128_ _max_kv_tile_32_
import json,glob,re,csv,sys
d=sys.argv[1]
cud={r['key']:float(r['time_us']) for r in csv.DictReader(open(d+'/cudnn/suite.csv')) if r['name']=='sdpa-cudnn'}
order=[l.strip() for l in open(d+'/cudnn-list.txt')]
def slug(s): return re.sub(r'_+','_',re.sub(r'[^a-z0-9]','_',s+'\n'))
for w in order:
    c=cud.get(w)
    out=[w.replace('--tree ','').replace('--heads ',''), f"cuDNN {c:.1f}"]
    for v in sys.argv[2:]:
        f=f"{d}/w-{slug(w)}-{v}.jsonl"
        try:
            for l in open(f):
                o=json.loads(l)
                if o.get('table')=='results':
                    out.append(f"{o['time_us']:.1f}/{o['graph_us']:.1f} ({o['pct_copy']:.1f}%) r={c/o['time_us']:.3f}")
        except FileNotFoundError: out.append(v+' -')
    print(' | '.join(out))
