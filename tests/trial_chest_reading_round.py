"""Aim a chest decoder round at the age the judge loses: add a second oracle's age reading to the loss (a diagnostic, not a test)

    python tests/trial_chest_reading_round.py --out /tmp/reading                          # 600 steps, ~10 min on 2 cores
    python tests/trial_chest_reading_round.py --out /tmp/reading --steps 600 --mult 3     # the age term three times as heavy
    python tests/trial_chest_reading_round.py --out /tmp/reading --steps 4 --n_val 64     # the same code, smoke
    python tests/trial_chest_reading_round.py --out /tmp/reading --steps 1000 --saliency_lam 0.25  # L1 also weighted at the knob

The latents hold the age detail the decoder loses (`trial_chest_latent_probe.py`), and decoder rounds with L1 and the perceptual
term stall near 0.92 (`trial_chest_perceptual_round.py`). Here one decoder-only round (encoder frozen: latents, UNet and signal
leak stay valid) on full 64-pixel images (the oracle's head needs the whole chest, so no crops), batch 32, the recipe's decoder
lr, seed data_seed + 1, adds to L1 + KL + lam1 * PerceptualDistance the mean |age read on the reconstruction - age read on the
target| in years, both read by the loss oracle (`load_perceptual('chest')`, seed 1, never the judge), weighted lam_age = mult *
(L1 / that age change) on the shipped round trip. The shipped judge scores it on the validation set (seed 30_000, 1024).
`--saliency_lam lam` also weights the L1 term per pixel by 1 + lam * S, S the loss oracle's age saliency on 1024 training images
(`attribute_saliency`, as `trial_chest_saliency_round.py`), and scores the card's first real set (seed 10_000, 256) too.
Rules, written before each run: nb 90's chest card, `perceptual_round_trial.reading_round` and `knob_reading_round_trial`.
"""
import argparse, json
from pathlib import Path
import torch
from medcf.diffusion import load_pipeline, vae_roundtrip, train_vae
from medcf.oracles import load_oracle, load_perceptual, PerceptualDistance, ReadingDistance, attribute_saliency
from medcf.zoo import zoo_phantom, RECIPES
from trial_chest_perceptual_round import measure, card_set_agreement


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--out', required=True); ap.add_argument('--steps', type=int, default=600)
    ap.add_argument('--n_val', type=int, default=1024); ap.add_argument('--mult', type=float, default=1.0); ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--saliency_lam', type=float, default=0.0, help='weight lam of the age saliency map in the L1 term (0: plain L1)')
    a = ap.parse_args(); out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    if not a.saliency_lam >= 0: raise ValueError(f'--saliency_lam {a.saliency_lam}: expected a weight >= 0')  # NaN too, before any image is rendered
    torch.set_num_threads(2)
    r, judge, other = RECIPES['chest'], load_oracle('chest'), load_perceptual('chest')
    pdist, adist = PerceptualDistance(other), ReadingDistance(other, 'age')  # the runs of 2026-12-04 used a local copy of the same formula (identical values and gradients)
    val = zoo_phantom('chest').sample(a.n_val, seed=30_000)
    images = zoo_phantom('chest').sample(r['n_images'], seed=r['data_seed']).images
    pixel_weights = 1 + a.saliency_lam * attribute_saliency(other, images[:1024], 'age') if a.saliency_lam else None
    card_a = zoo_phantom('chest', 0).sample(min(a.n_val, 256), seed=10_000) if a.saliency_lam else None  # the card's first real set
    pipe = load_pipeline('chest')
    before = measure(pipe, judge, other, val)
    if a.saliency_lam: before['card_set_a'] = card_set_agreement(pipe, judge, card_a)
    print('shipped:', before, flush=True)
    x = images[:256].float(); rt = vae_roundtrip(pipe, x).float().cpu()
    with torch.no_grad(): l1, p0, a0 = float((rt - x).abs().mean()), float(pdist(rt, x).mean()), float(adist(rt, x).mean())
    lam1, lam_age = l1 / p0, a.mult * l1 / a0
    print(f'L1 {l1:.5f} perceptual {p0:.5f} age-read change (loss oracle) {a0:.3f} y -> lam1 {lam1:.4f}, lam_age {lam_age:.5f}', flush=True)
    loss = lambda u, v: pdist(u, v) + (lam_age / lam1) * adist(u, v)
    h = train_vae(pipe, images, a.steps, a.batch, r['vae_decoder_lr'], crop=None, decoder_only=True, perceptual=loss, perceptual_weight=lam1,
                  seed=r['data_seed'] + 1, progress=False, pixel_weights=pixel_weights)
    after = measure(pipe, judge, other, val); after['train_seconds'] = round(h['seconds'], 1)
    if a.saliency_lam: after['card_set_a'] = card_set_agreement(pipe, judge, card_a)
    print('after:', after, flush=True)
    rec = dict(steps=a.steps, batch=a.batch, crop=None, lr=r['vae_decoder_lr'], lam1=lam1, lam_age=lam_age, mult=a.mult, saliency_lam=a.saliency_lam, before=before, after=after)
    (out / 'reading_round.json').write_text(json.dumps(rec, indent=1)); pipe.vae.save_pretrained(out / 'vae')


if __name__ == '__main__':
    main()
