"""Refresh a notebook's stale stored outputs from a run as nbdev_test makes it (not a test, not collected by pytest).

    PYTHONPATH=. python tests/refresh_stored_outputs.py nbs/01_data.ipynb [--dry] [--cells 12 47]

Runs the notebook in nbs/ with IN_TEST=1 (cells flagged `slow` skipped, pandas at Jupyter's display settings), then stores
the fresh outputs of the code cells whose stored text is stale: empty where the cell now prints, or different once numbers,
figure placeholders, temp paths, addresses and spacing are set aside (so a cell that differs only in timings keeps its
stored output; one whose fresh run lacks stored lines is kept and named: execnb drops what a cell ending in ';' prints). `--cells` also refreshes the cells named by index (e.g. a table whose third decimal moved). `--dry` prints
without writing. Run `nbdev_clean --fname` on the notebook after. Session 51 refreshed nb 00, 01, 03, 40 and 50 with it.
"""
import sys, os, json, re
from execnb.nbio import read_nb
from execnb.shell import CaptureShell

def text(outs) -> str:
    "A cell's printed text and text results, as a reader sees them."
    return ''.join(''.join(o.get('text', '')) if o.get('output_type') == 'stream' else ''.join(o.get('data', {}).get('text/plain', '')) for o in outs)

def norm(s: str) -> str:
    "`s` with numbers, figure placeholders, temp paths, addresses and spacing set aside."
    s = re.sub(r'0x[0-9a-f]+', 'ADDR', s); s = re.sub(r'/tmp/tmp\w+', 'TMP', s); s = re.sub(r'<Figure size [^>]*>', '', s)
    return re.sub(r'\s+', ' ', re.sub(r'\d+', '#', s)).strip()

if __name__ == '__main__':
    a = sys.argv[1:]; dry = '--dry' in a
    rest = a[a.index('--cells') + 1:] if '--cells' in a else []
    force = {int(i) for i in rest[:next((k for k, x in enumerate(rest) if not x.isdigit()), len(rest))]}  # the indexes after --cells, up to the next option
    path = os.path.abspath(a[0])
    os.environ['IN_TEST'] = '1'
    raw, before = json.load(open(path)), open(path).read()
    nb = read_nb(path)
    os.chdir(os.path.dirname(path))
    for c in nb.cells:  # as nbdev_test: a cell flagged slow is not run
        if c.cell_type == 'code' and re.search(r'^#\|\s*slow\b', ''.join(c.source), re.M): c.source = ''
    sh = CaptureShell(path)
    sh.run("import pandas as _pd; _pd.set_option('display.max_columns', 20); _pd.set_option('display.width', 80)")  # Jupyter's, not a terminal's
    sh.run_all(nb, exc_stop=True)
    n = 0
    for i, (c_run, c) in enumerate(zip(nb.cells, raw['cells'])):
        if c['cell_type'] != 'code' or not c_run.source: continue
        old, new = text(c.get('outputs', [])), text(c_run.outputs)
        lost = {norm(l) for l in old.splitlines()} - {norm(l) for l in new.splitlines()} - {''}
        if lost and i not in force:  # execnb drops a cell's printed text when its last line ends with ';' (matplotlib calls): keep the stored output
            print(f'=== cell {i}: kept, the fresh run lacks {len(lost)} stored line(s) (execnb drops what a cell ending in ";" prints); --cells {i} replaces it anyway'); continue
        if i in force or norm(old) != norm(new):
            n += 1; c['outputs'] = [dict(o) for o in c_run.outputs]
            print(f'=== cell {i}: {"".join(c["source"])[:70]!r}\n--- stored:\n{old[:600]}\n--- fresh:\n{new[:600]}')
    print(f'{n} cells refreshed' + (' (dry run: nothing written)' if dry else ''))
    if open(path).read() != before: raise SystemExit('the notebook changed on disk while it ran: nothing written')
    if n and not dry: open(path, 'w').write(json.dumps(raw, indent=1, ensure_ascii=False) + '\n')
