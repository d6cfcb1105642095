"""The perceptual loss from the start: the chest recipe's whole VAE stage trained with it (a diagnostic, measured 2026-12-04;
not a test, not collected by pytest).

    python tests/trial_chest_perceptual_vae.py --out /tmp/pvae              # ~12 min on 2 cores
    python tests/trial_chest_perceptual_vae.py --out /tmp/pvae --smoke      # the same code on 256 images, 4 steps
    python tests/trial_chest_perceptual_vae.py --out /tmp/pvae6k --steps 6000   # twice the recipe's stage, ~26 min
    python tests/trial_chest_perceptual_vae.py --out /tmp/pvae_lr --lr 4e-3      # the recipe's stage at twice its learning rate
    python tests/trial_chest_perceptual_vae.py --out /tmp/lc8 --latent_channels 8 --weight 0   # 8 latent channels (skin's), no perceptual term

The recipe's VAE stage (`build_pipeline` with the recipe's blocks and latent channels, `train_vae` with its steps, batch, lr,
crop and seed on its 20000 training images) with `perceptual=PerceptualDistance(load_perceptual('chest'))` at weight 0.123
(the decoder-round trial's lam1) added from the first step; the judge (the shipped oracle) measures its round trip on the
validation set (seed 30_000, 1024) as the decoder trials do. A new encoder means new latents: a UNet would have to be trained on
them, so this only says whether that retrain is worth its hour. The shipped autoencoder on the same set: age-bin .9023.
"""
import argparse, json
from pathlib import Path
import torch
from medcf.diffusion import build_pipeline, train_vae
from medcf.oracles import load_oracle, load_perceptual, PerceptualDistance
from medcf.zoo import zoo_phantom, RECIPES
from trial_chest_perceptual_round import measure


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--out', required=True); ap.add_argument('--weight', type=float, default=0.123)
    ap.add_argument('--smoke', action='store_true'); ap.add_argument('--steps', type=int, default=None, help="VAE steps (default: the recipe's)")
    ap.add_argument('--lr', type=float, default=None, help="peak VAE learning rate (default: the recipe's vae_lr)")
    ap.add_argument('--latent_channels', type=int, default=None, help="latent channels (default: the recipe's)")
    a = ap.parse_args(); out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    if not a.weight >= 0: ap.error(f'--weight {a.weight}: expected a weight >= 0 (0: no perceptual term)')
    torch.set_num_threads(2)
    r, judge, other = RECIPES['chest'], load_oracle('chest'), load_perceptual('chest')
    n, steps, n_val = (256, 4, 64) if a.smoke else (r['n_images'], a.steps or r['vae_steps'], 1024)
    images = zoo_phantom('chest').sample(n, seed=r['data_seed']).images
    lc = a.latent_channels or r['latent_channels']
    pipe = build_pipeline(r['channels'], r['size'], r['vae_blocks'], r['unet_blocks'], lc, seed=r['data_seed'],
                          unet_attention=r['unet_attention'], unet_text_time=r['unet_text_time'])
    lr = r['vae_lr'] if a.lr is None else a.lr
    h = train_vae(pipe, images, steps, r['vae_batch'], lr, crop=r['vae_crop'], seed=r['data_seed'],
                  perceptual=PerceptualDistance(other) if a.weight > 0 else None, perceptual_weight=a.weight, progress=False)
    val = zoo_phantom('chest').sample(n_val, seed=30_000)
    rec = dict(steps=steps, lr=lr, weight=a.weight, latent_channels=lc, train_seconds=round(h['seconds'], 1), scaling_factor=h['scaling_factor'],
               validation=dict(seed=30_000, n=n_val), after=measure(pipe, judge, other, val))
    print(json.dumps(rec, indent=1)); (out / 'perceptual_vae.json').write_text(json.dumps(rec, indent=1))
    pipe.vae.save_pretrained(out / 'vae')


if __name__ == '__main__':
    main()
