"""Is the age-bin bar out of reach with any judge, or with this one? (a diagnostic, measured 2026-12-05; not a test, not collected by pytest)

    python tests/trial_chest_judge_precision.py --out /tmp/judge_x3            # ~10 min on 2 cores
    python tests/trial_chest_judge_precision.py --out /tmp/jp --smoke          # the same code: 20 steps, 128 images per set

Trains a chest oracle by the shipped judge's recipe but longer and on more images (`train_oracle(ChestPhantom(size=64),
steps=5400, n_train=60000, seed=0)`: three times the steps, 2.5 times the pool) and sets it beside the shipped judge:
held-out age MAE and age-bin accuracy against the TRUE age (seed 2_000_000, 1000), and on the validation set (seed 30_000,
1024) the ceiling of `trial_chest_denoising_round.py` (age-bin agreement with the grain-free renders of the same chests and
with five other grain planes) and the agreement with the shipped autoencoder's round trip and with decoder-trial autoencoders
(`--vae NAME=FOLDER`). It does not replace the judge: every card figure is measured with the shipped one.
"""
import argparse, json, time
from pathlib import Path
import torch
from diffusers import AutoencoderKL
from medcf.oracles import train_oracle, load_oracle, reading_agreement
from medcf.phantoms import ChestPhantom
from medcf.diffusion import load_pipeline, vae_roundtrip
from medcf.zoo import zoo_phantom
from trial_chest_denoising_round import ceiling


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--out', required=True); ap.add_argument('--smoke', action='store_true')
    ap.add_argument('--steps', type=int, default=5400); ap.add_argument('--n_train', type=int, default=60_000)
    ap.add_argument('--vae', action='append', default=[], metavar='NAME=FOLDER', help='another chest autoencoder to score; repeatable')
    a = ap.parse_args(); out_dir = Path(a.out); out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    steps, n_train, n = (20, 256, 128) if a.smoke else (a.steps, a.n_train, 1024)
    t = time.time()
    new = train_oracle(ChestPhantom(size=64), steps=steps, batch_size=64, n_train=n_train, seed=0)
    new.save(out_dir, 'attributes', overwrite=True)  # its own --out folder: a re-run replaces it
    judges = {'shipped': load_oracle('chest'), f'{steps} steps, {n_train} images': new}
    out = dict(train_seconds=round(time.time() - t, 1), steps=steps, n_train=n_train, judges={})
    held = ChestPhantom(size=64).sample(min(n, 1000), seed=2_000_000)
    real = zoo_phantom('chest').sample(n, seed=30_000).images
    card_a = zoo_phantom('chest', 0).sample(min(n, 256), seed=10_000).images
    pipes = {'shipped autoencoder': load_pipeline('chest')}
    for spec in a.vae:
        name, folder = spec.split('=', 1)
        p = load_pipeline('chest'); p.register_modules(vae=AutoencoderKL.from_pretrained(folder).eval().requires_grad_(False)); pipes[name] = p
    rts = {k: (vae_roundtrip(p, real).float().cpu(), vae_roundtrip(p, card_a).float().cpu()) for k, p in pipes.items()}
    for name, o in judges.items():
        ev = o.evaluate(held.images, held.attrs).set_index('attribute').value
        agree = lambda x, y=real: round(float(reading_agreement(o, y, x)['age_bin']), 4)
        c = ceiling(o, n, 30_000); rt = sorted(c['retest'])  # the grain-free renders and five other grain planes, as in the denoising trial
        out['judges'][name] = dict(heldout_age_MAE=round(float(ev['age']), 3), heldout_age_bin_acc=round(float(ev['age_bin']), 4),
                                   heldout_binary_min=round(float(min(ev[s.name] for s in o.specs if s.kind != 'continuous' and len(s.values) == 2)), 4),  # every two-valued attribute (sex and view too)
                                   grain_free=c['grain_free'], retest=rt, retest_median=rt[len(rt) // 2],
                                   **{f'{k}, validation': agree(v[0]) for k, v in rts.items()},
                                   **{f"{k}, card set a": agree(v[1], card_a) for k, v in rts.items()})
        print(name, out['judges'][name], flush=True)
    print(json.dumps(out, indent=1)); (out_dir / 'judge_precision.json').write_text(json.dumps(out, indent=1))


if __name__ == '__main__':
    main()
