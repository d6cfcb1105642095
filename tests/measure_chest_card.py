"""Re-measure the shipped chest card's figures (measured 2026-12-04; not a test, not collected by pytest).

    python tests/measure_chest_card.py --out /tmp/chest_card.json            # ~35 min on 2 cores, nothing else running
    python tests/measure_chest_card.py --out /tmp/chest_card.json --smoke    # the same code on 8 images and 2 steps (~1 min)

In the order the card's were made: `select_guidance` over `GUIDANCE_GRID` on the validation sets, `evaluate_zoo_model` at the
chosen scale and interval, `oracle_fd_seeds` (the Frechet ratio and the ages read at seeds 0-2, `seed_rows`), `age_slope` at
w 1, at the chosen scale at every step and inside the chosen interval, and `guidance_sweep` inside the chosen interval.
Writes one JSON; putting it into the card (`medcf.zoo.update_card`) is left to the caller.
"""
import argparse, json, sys, time
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from medcf import zoo
from medcf.diffusion import load_pipeline
from trial_chest_ztsnr import seed_rows
from trial_chest_text_time import age_slope


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--out', required=True); ap.add_argument('--model', default='chest')
    ap.add_argument('--smoke', action='store_true')
    a = ap.parse_args(); torch.set_num_threads(2)
    n, steps = (8, 2) if a.smoke else (256, 50)
    pipe, out, t = load_pipeline(a.model), {}, time.time()

    def save(): Path(a.out).write_text(json.dumps(out, indent=1))
    sel = zoo.select_guidance('chest', pipe, zoo.GUIDANCE_GRID['scales'], n=n, num_inference_steps=steps, intervals=zoo.GUIDANCE_GRID['intervals'])
    out['guidance_selection'], out['guidance_selection_s'] = sel, round(time.time() - t, 1); save()
    best = next(r for r in sel if r['chosen'])
    w, gi = best['guidance_scale'], None if best['guidance_interval'] is None else tuple(best['guidance_interval'])
    print('chosen guidance', w, gi, flush=True)
    q = zoo.evaluate_zoo_model('chest', pipe, n=n, num_inference_steps=steps, n_invert=min(64, n), guidance_scale=w, guidance_interval=gi)
    q['oracle_fd_seeds'] = seed_rows(pipe, n, steps, w, gi)
    assert q['oracle_fd_seeds'][0]['generated_vs_real'] == q['oracle_fd']['generated_vs_real']  # seed 0 is the card's own set
    out['quality'] = q; save()
    slope = {'1.0': age_slope(pipe, n, steps, 1.0), str(w): age_slope(pipe, n, steps, w)}
    if gi is not None: slope[f'{w}, t<={gi[1]}'] = age_slope(pipe, n, steps, w, guidance_interval=gi)
    out['age_slope'] = {k: round(v, 3) for k, v in slope.items()}; print('age slope', out['age_slope'], flush=True); save()
    t = time.time()
    out['guidance_sweep'] = zoo.guidance_sweep('chest', pipe, n=n, num_inference_steps=steps, guidance_interval=gi).to_dict('records')
    out['guidance_sweep_s'] = round(time.time() - t, 1); save()
    print('written', a.out)


if __name__ == '__main__':
    main()
