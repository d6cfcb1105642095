"""Reproduce the previous chest card's (data_samples/models/history/chest_v1) `text_time_trial` (measured 2026-12-03; not a test, not collected by pytest).

    python tests/trial_chest_text_time.py --work /tmp/chest_tt            # full: ~20 min of UNet training + ~2 min of selection + ~6 min of figures on 2 cores
    python tests/trial_chest_text_time.py --work /tmp/tt --smoke          # the same code, a few steps and 8 images (~30 s)
    python tests/trial_chest_text_time.py --work /tmp/tt4800 --unet-steps 4800   # the card's text_time_trial.longer (~41 min of UNet training)

Both ran on the chest checkpoint shipped until 2026-12-04 (now data_samples/models/history/chest_v1, `PREVIOUS`), whose card
holds their records; the current chest recipe adopted the pooled prompt.

The previous chest UNet barely reads the age in its captions: on the card's second real set the age the oracle reads on images
generated from 'patient aged N' captions hardly moves with N (slope ~0.1 at the recipe's guidance), although MiniLM's token
states for different ages differ (cosine 0.6-0.8). Age is a global property of the image (bone contrast, aortic knob), and
the UNet hears the prompt only through cross-attention at its two coarser levels. This trial retrains the recipe's UNet on the
previous checkpoint's autoencoder (`vae_from`, snapshot selection included) with `unet_text_time=True`: an attention-pooled prompt is added
to the timestep embedding, so every ResNet block sees it (diffusers' `addition_embed_type='text'`; SDXL adds a pooled text
embedding the same way). Then the card's figures at seed 0, the Frechet ratio and read ages at seeds 0-2, and the age slope.
"""
import argparse, json, time
from pathlib import Path
import numpy as np, torch
from medcf import zoo
from medcf.diffusion import load_pipeline, generate
from trial_chest_ztsnr import seed_rows, PREVIOUS, previous_recipe  # the same per-seed Frechet and age rows (this folder is on sys.path when run as a script)


def age_slope(pipe, n: int, steps: int, w: float, seed: int = 0, guidance_interval: tuple | None = None) -> float:
    "Slope of the age the oracle reads on images generated from detailed captions ('... aged N ...') on the captions' N."
    from medcf.oracles import load_oracle
    real = zoo.zoo_phantom('chest').sample(n, seed=20_000 + seed)
    read = load_oracle('chest').predict(generate(pipe, list(real.prompts), steps, w, seed=seed + 1, guidance_interval=guidance_interval)).age.to_numpy()
    return float(np.polyfit(real.attrs.age.to_numpy(), read, 1)[0])


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--work', required=True); ap.add_argument('--smoke', action='store_true')
    ap.add_argument('--shipped-only', action='store_true', help='only the age slope of the previous checkpoint (shipped when the trial ran)')
    ap.add_argument('--unet-steps', type=int, default=None, help="UNet steps (default: the previous recipe's 2400); snapshot selection as the recipe")
    a = ap.parse_args(); work = Path(a.work)
    torch.set_num_threads(2)
    ov = dict(previous_recipe(), unet_text_time=True, **(dict(n_images=256, unet_steps=4, select_every=2, select_n=8, select_steps=2) if a.smoke else {}))
    if a.unet_steps is not None: ov['unet_steps'] = a.unet_steps
    tag = '' if a.unet_steps is None else f'_{a.unet_steps}'
    n, steps = (8, 2) if a.smoke else (256, 50)
    w = ov['guidance_scale']
    if a.shipped_only:
        print('shipped age slope:', {k: round(age_slope(load_pipeline(PREVIOUS), n, steps, k), 3) for k in (1.0, w)}); return
    t = time.time()
    card = zoo.train_zoo_model('chest', work / f'chest_tt{tag}', work_dir=work / f'train{tag}', progress=not a.smoke,
                               vae_from=PREVIOUS / 'vae', **ov)
    print('trained in', round(time.time() - t, 1), 's:', card['wall_time_s'], '\nselection:', card['snapshot_selection'], flush=True)
    pipe = load_pipeline(work / f'chest_tt{tag}'); assert pipe.unet.config.addition_embed_type == 'text'
    q = zoo.evaluate_zoo_model('chest', pipe, n=n, num_inference_steps=steps, n_invert=min(64, n), guidance_scale=w,
                               guidance_interval=ov['guidance_interval'])
    print('card figures at seed 0:', json.dumps({k: q[k] for k in ('prompt_adherence', 'oracle_fd', 'inversion')}), flush=True)
    q['oracle_fd_seeds'] = seed_rows(pipe, n, steps, w)
    q['age_slope'] = {str(k): round(age_slope(pipe, n, steps, k), 3) for k in (1.0, w)}
    print('age slope by guidance scale:', q['age_slope'])
    out = dict(wall_time_s=card['wall_time_s'], snapshot_selection=card['snapshot_selection'], quality=q)
    (work / f'text_time_trial{tag}.json').write_text(json.dumps(out, indent=1))
    print('pooled ratio', round(sum(r['generated_vs_real'] for r in q['oracle_fd_seeds']) / sum(r['real_vs_real_floor'] for r in q['oracle_fd_seeds']), 3))


if __name__ == '__main__':
    main()
