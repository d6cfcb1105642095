"""A decoder round that weights the pixels the age is read from (a diagnostic, measured 2026-12-05; not a test, not collected by pytest).

    python tests/trial_chest_saliency_round.py --out /tmp/sal            # ~4 min per weight on 2 cores
    python tests/trial_chest_saliency_round.py --out /tmp/sal --smoke    # the same code on 256 images, 4 steps, 64 validation images

The second chest oracle (`load_perceptual('chest')`: the judge's recipe, seed 1; never the judge) reads the age mostly from a few
pixels: the aortic knob. Its saliency map S (mean |d age / d pixel| over 1024 training images, scaled to mean 1) weights the L1 term of
one decoder-only round on the shipped autoencoder (`train_vae(pixel_weights=1 + lam * S)`, the recipe's decoder lr, batch and crop,
seed data_seed + 1; encoder, latents and UNet unchanged). The judge (the shipped oracle) measures the round trip on the
validation set (seed 30_000, 1024) and on the card's first real set (seed 10_000, 256), as the other decoder trials do.
"""
import argparse, json
from pathlib import Path
import torch
from medcf.diffusion import load_pipeline, train_vae
from medcf.oracles import load_oracle, load_perceptual, attribute_saliency
from medcf.zoo import zoo_phantom, RECIPES
from trial_chest_perceptual_round import measure, card_set_agreement


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--out', required=True); ap.add_argument('--smoke', action='store_true')
    ap.add_argument('--lams', default='1', help='weights lam of the saliency map, comma-separated')
    ap.add_argument('--steps', type=int, default=1000)
    a = ap.parse_args(); out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    r, judge, other = RECIPES['chest'], load_oracle('chest'), load_perceptual('chest')
    n, steps, n_val, n_a = (256, 4, 64, 64) if a.smoke else (r['n_images'], a.steps, 1024, 256)
    images = zoo_phantom('chest').sample(n, seed=r['data_seed']).images
    S = attribute_saliency(other, images[:1024], 'age')  # (the run of 2026-12-05 used the same computation, inlined here before it moved to medcf.oracles)
    flat = S.flatten().sort(descending=True).values
    rec = dict(steps=steps, saliency_top1pct_share=round(float(flat[:len(flat) // 100].sum() / flat.sum()), 4),
               saliency_argmax_row_col=[int(v) for v in divmod(int(S.argmax()), S.shape[1])], arms={})  # the card's names
    val = zoo_phantom('chest').sample(n_val, seed=30_000)
    card_a = zoo_phantom('chest', 0).sample(n_a, seed=10_000)
    pipe = load_pipeline('chest'); rec['before'] = dict(validation=measure(pipe, judge, other, val), card_set_a=card_set_agreement(pipe, judge, card_a))
    print('shipped:', rec['before'], flush=True)
    for lam in [float(v) for v in a.lams.split(',')]:
        pipe = load_pipeline('chest')
        h = train_vae(pipe, images, steps, r['vae_batch'], r['vae_decoder_lr'], crop=r['vae_crop'], decoder_only=True,
                      pixel_weights=1 + lam * S, seed=r['data_seed'] + 1, progress=False)
        row = dict(validation=measure(pipe, judge, other, val), card_set_a=card_set_agreement(pipe, judge, card_a), train_seconds=round(h['seconds'], 1))
        rec['arms'][f'lam{lam:g}_{steps}'] = dict(lam=lam, steps=steps, **row); print(f'lam {lam}:', row, flush=True)
        pipe.vae.save_pretrained(out / f'vae_lam{lam:g}')
    print(json.dumps(rec, indent=1)); (out / 'saliency_round.json').write_text(json.dumps(rec, indent=1))


if __name__ == '__main__':
    main()
