"""Build a zoo card's `notebook_full_run` record from a checkpoint that 90_model_zoo's full mode retrained (not a test, not collected by pytest).

    MEDCF_FULL=1 MEDCF_RETRAIN_MODELS=skin MEDCF_RETRAIN_DIR=/tmp/retrained jupyter nbconvert --to notebook --execute nbs/90_model_zoo.ipynb --output-dir /tmp/retrained
    python tests/benchmark_zoo_recipe.py --models skin > /tmp/bench.txt        # optional: the extrapolation on the same machine
    python tests/record_notebook_run.py --retrained /tmp/retrained/skin --what "..." [--benchmark /tmp/bench.txt] [--write]

The record holds the retrained card's time, hardware, chosen guidance and quality figures (the notebook measured them at the
card's seed 0), the Frechet ratio at seeds 1 and 2 measured here on the card's real sets (about 75 s each for skin on 2 cores),
the benchmark's figures if given, and which files equal the shipped ones. Printed; --write adds it to the shipped card
(`medcf.zoo.update_card`, which regenerates its README). The skin card's record of 2026-12-06 was made by this code.
"""
import argparse, json, re, time
from pathlib import Path
from medcf import zoo
from medcf.diffusion import read_card, load_pipeline, zoo_dir


def fd_rows(name: str, pipe, q: dict, seeds=(1, 2)) -> list:
    "The card's Frechet ratio at seed 0 (from its quality) and at `seeds`, on the card's real sets and guidance."
    rows = [dict(seed=0, **{k: q['oracle_fd'][k] for k in ('generated_vs_real', 'real_vs_real_floor', 'ratio')})]
    gi = q['eval']['guidance_interval']
    for s in seeds:
        t = time.time()
        _, o, a, b, floor = zoo._held_out(name, pipe, None, q['eval']['n'], s)
        fd = zoo._generated_fd(pipe, o, name, a, b, q['eval']['steps'], q['eval']['guidance_scale'], s, None if gi is None else tuple(gi))  # the card's own FD
        rows.append(dict(seed=s, generated_vs_real=round(fd, 4), real_vs_real_floor=round(floor, 4), ratio=round(fd / floor, 3)))
        print(rows[-1], f'{time.time() - t:.0f} s', flush=True)
    return rows


def benchmark(path: Path, name: str) -> dict:
    "tests/benchmark_zoo_recipe.py's line for `name`, as the card keeps it."
    m = re.search(rf"{name}: VAE ([\d.]+) s/step x \d+ = ([\d.]+) min; decoder ([\d.]+) s/step x \d+ = ([\d.]+) min; "
                  rf"UNet ([\d.]+) s/step x \d+ = ([\d.]+) min.*recipe ~([\d.]+) min", path.read_text())
    if m is None: raise ValueError(f"{path} holds no benchmark_zoo_recipe.py line for {name!r}")
    v = [float(x) for x in m.groups()]
    return dict(what=f'tests/benchmark_zoo_recipe.py --models {name} (its defaults) on the same VM minutes after the run, nothing else running: the extrapolation beside the measured wall time',
                s_per_step=dict(vae=v[0], decoder=v[2], unet=v[4]), minutes=dict(vae=v[1], decoder_rounds=v[3], unet=v[5], total=v[6]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--retrained', required=True, help="the retrained checkpoint folder (MEDCF_RETRAIN_DIR/<name>)")
    ap.add_argument('--what', required=True, help='how the run was made, for the record')
    ap.add_argument('--benchmark', default=None, help="a file holding benchmark_zoo_recipe.py's output for this model")
    ap.add_argument('--write', action='store_true', help='add the record to the shipped card')
    a = ap.parse_args()
    out = Path(a.retrained); rc = read_card(out); name = rc['name']; shipped = read_card(name); q = rc['quality']
    files = sorted(rc['files'])
    fd_seeds = fd_rows(name, load_pipeline(out), q)
    floors = {r['seed']: r['real_vs_real_floor'] for r in shipped['quality'].get('oracle_fd_seeds', [])}
    bad = [r for r in fd_seeds if r['seed'] in floors and abs(r['real_vs_real_floor'] - floors[r['seed']]) > 1e-3]
    if bad: raise ValueError(f"floors {bad} differ from the shipped card's {floors}: not the card's real sets")
    rec = dict(what=a.what, hardware=rc['hardware'], torch=rc.get('torch'), trained=rc['trained'], wall_time_s=rc['wall_time_s'],
               after_training_s=round((out / 'model_card.json').stat().st_mtime - max((out / f).stat().st_mtime for f in files), 1),
               after_training='select_guidance, evaluate_zoo_model and guidance_sweep together: from the checkpoint saved to its card updated',
               snapshot_chosen=next((r for r in rc['snapshot_selection'] or [] if r['chosen']), None),
               guidance_chosen=next(r for r in rc['guidance_selection']['scales'] if r['chosen']),
               prompt_adherence=q['prompt_adherence'], vae_attribute_agreement=q['vae_attribute_agreement'])
    if 'border' in q.get('vae_positive_recall', {}): rec['vae_positive_recall_border'] = q['vae_positive_recall']['border']
    rec.update(oracle_fd=q['oracle_fd'], oracle_fd_seeds=fd_seeds, pooled_fd_ratio=round(zoo.pooled_ratio(fd_seeds), 3),
               inversion=q['inversion'], eval_seconds=q['eval']['seconds'], guidance_sweep=q['guidance_sweep'])
    if a.benchmark: rec['recipe_benchmark_after'] = benchmark(Path(a.benchmark), name)
    rec['weights_as_shipped'] = {f: rc['files'][f] == shipped['files'].get(f) for f in files}
    print(json.dumps(rec, indent=1))
    if a.write: zoo.update_card(zoo_dir() / name, notebook_full_run=rec); print('written')


if __name__ == '__main__':
    main()
