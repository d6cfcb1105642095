"""Would a steadier judge pass the chest autoencoder? (a diagnostic, measured 2026-12-04; not a test, not collected by pytest)

    python tests/trial_chest_robust_judge.py --out /tmp/robust_judge   # ~4 min on 2 cores
    python tests/trial_chest_robust_judge.py --out /tmp/robust_judge --vae reading_1200=/tmp/rr1200/vae   # also score other autoencoders

Trains the chest oracle by the shipped judge's recipe (`train_oracle(ChestPhantom(size=64), steps=1800, batch_size=64, seed=0)`)
on noisy copies (`noise_std=0.06`, 03_oracles exercise 3) and sets it beside the shipped judge: held-out age MAE and age-bin
accuracy (seed 2_000_000, 1000), age-bin agreement under pixel noise of the chest round trip's size (std 0.0335), and the shipped
chest autoencoder's age-bin agreement on the card's first real set (256) and on the validation set (seed 30_000, 1024).
It does not replace the judge: every card figure is measured with the shipped one.
"""
import argparse, json, time
from pathlib import Path
import torch
from medcf.oracles import train_oracle, load_oracle, noise_agreement, reading_agreement
from medcf.phantoms import ChestPhantom
from medcf.diffusion import load_pipeline, vae_roundtrip
from medcf.zoo import zoo_phantom
from diffusers import AutoencoderKL


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--out', required=True); ap.add_argument('--noise_std', type=float, default=0.06)
    ap.add_argument('--vae', action='append', default=[], metavar='NAME=FOLDER',
                    help='another chest autoencoder (an AutoencoderKL folder) to score on the validation set with both judges; repeatable')
    a = ap.parse_args(); out_dir = Path(a.out); out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    t = time.time()
    rob = train_oracle(ChestPhantom(size=64), steps=1800, batch_size=64, seed=0, noise_std=a.noise_std)
    rob.save(out_dir, 'attributes', overwrite=True); out = dict(train_seconds=round(time.time() - t, 1), noise_std=a.noise_std)
    judge, pipe = load_oracle('chest'), load_pipeline('chest')
    held = ChestPhantom(size=64).sample(1000, seed=2_000_000)
    for name, o in (('shipped', judge), ('robust', rob)):
        ev = o.evaluate(held.images, held.attrs).set_index('attribute').value
        out[f'{name}_heldout'] = {'age_MAE': round(float(ev['age']), 3), 'age_bin_acc': round(float(ev['age_bin']), 4)}
        out[f'{name}_noise_0335'] = round(float(noise_agreement(o, held.images, 0.0335)['age_bin']), 4)
    val = zoo_phantom('chest').sample(1024, seed=30_000)
    for label, b in (('card_set_a', zoo_phantom('chest', 0).sample(256, seed=10_000)), ('validation', val)):
        rt = vae_roundtrip(pipe, b.images).float().cpu()
        for name, o in (('shipped', judge), ('robust', rob)):
            out[f'{name}_vae_age_bin_{label}'] = round(float(reading_agreement(o, b.images, rt)['age_bin']), 4)
    for spec in a.vae:  # e.g. a decoder round's autoencoder: does a judge trained another way agree more with it too?
        name, folder = spec.split('=', 1)
        p = load_pipeline('chest'); p.register_modules(vae=AutoencoderKL.from_pretrained(folder).eval().requires_grad_(False))
        rt = vae_roundtrip(p, val.images).float().cpu()
        out[f'vae_{name}_validation'] = {j: round(float(reading_agreement(o, val.images, rt)['age_bin']), 4) for j, o in (('shipped', judge), ('robust', rob))}
    print(json.dumps(out, indent=1)); (out_dir / 'robust_judge.json').write_text(json.dumps(out, indent=1))


if __name__ == '__main__':
    main()
