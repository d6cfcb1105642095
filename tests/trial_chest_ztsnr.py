"""Reproduce the previous chest card's (data_samples/models/history/chest_v1) `ztsnr_vpred_trial` (measured 2026-12-03; not a test, not collected by pytest).

    python tests/trial_chest_ztsnr.py --work /tmp/chest_ztsnr            # full: ~20 min of UNet training + ~2 min of selection + ~5 min of figures on 2 cores
    python tests/trial_chest_ztsnr.py --work /tmp/zt --smoke             # the same code, a few steps and 8 images (~30 s)

The previous chest recipe's UNet retrained on the previous checkpoint's autoencoder (`PREVIOUS`, data_samples/models/history/chest_v1) (`train_zoo_model(..., vae_from=...)`, snapshot selection included)
with the scheduler of Lin et al. (arXiv:2305.08891) instead of Stable Diffusion's: betas rescaled to zero terminal SNR,
v-prediction, trailing timestep spacing, so the last training timestep carries no signal and there is no leak to put back
(`add_signal_leak` adds ~0 there). Then the card's figures at seed 0 (`evaluate_zoo_model`) and, at seeds 0-2, the Frechet ratio
and the mean and spread of the ages the oracle reads on the generated set (and on the real set it is compared with).
"""
import argparse, json, time
from pathlib import Path
import torch
from medcf import zoo
from medcf.diffusion import load_pipeline, zoo_dir, CARD
from medcf.metrics import oracle_frechet_distance

PREVIOUS = zoo_dir() / 'history' / 'chest_v1'  # the chest checkpoint the card trials were measured on (shipped until 2026-12-04)


def previous_recipe() -> dict:
    "The recipe fields the previous chest checkpoint was made with and the current recipe changed, as train_zoo_model overrides."
    r = json.loads((PREVIOUS / CARD).read_text())['recipe']
    return dict(unet_text_time=r.get('unet_text_time', False), unet_steps=r['unet_steps'], guidance_scale=r['guidance_scale'],
                guidance_interval=r.get('guidance_interval'),  # v1 guided at every step (None); the current recipe at t <= 600
                vae_decoder_steps=r['vae_decoder_steps'], vae_decoder_perceptual=r.get('vae_decoder_perceptual'))  # v1: no decoder round


def ztsnr_build_pipeline(build):
    "Wrap `build_pipeline` so that every pipeline it makes gets the zero-terminal-SNR v-prediction DDIM scheduler."
    from diffusers import DDIMScheduler
    def bp(*a, **k):
        p = build(*a, **k)
        p.register_modules(scheduler=DDIMScheduler.from_config(p.scheduler.config, rescale_betas_zero_snr=True,
                                                               prediction_type='v_prediction', timestep_spacing='trailing'))
        return p
    return bp


def seed_rows(pipe, n: int, steps: int, w: float, guidance_interval: tuple | None = None) -> list:
    "Frechet ratio and the ages the oracle reads, generated and real, at seeds 0-2 (the card's sets)."
    rows = []
    for s in (0, 1, 2):
        _, o, a, b, floor = zoo._held_out('chest', pipe, None, n, s)
        g = zoo._generated(pipe, 'chest', b, steps, w, s, guidance_interval)
        fd = oracle_frechet_distance(o.features, a.images, g)
        age, real = o.predict(g)['age'], o.predict(a.images)['age']
        rows.append(dict(seed=s, generated_vs_real=round(fd, 4), real_vs_real_floor=round(floor, 4), ratio=round(fd / floor, 3),
                         age_read_mean=round(float(age.mean()), 1), age_read_sd=round(float(age.std()), 1), real_age_read_sd=round(float(real.std()), 1)))
        print(rows[-1], flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--work', required=True); ap.add_argument('--smoke', action='store_true')
    a = ap.parse_args(); work = Path(a.work)
    torch.set_num_threads(2)
    ov = dict(n_images=256, unet_steps=4, select_every=2, select_n=8, select_steps=2) if a.smoke else {}
    n, steps = (8, 2) if a.smoke else (256, 50)
    zoo.build_pipeline = ztsnr_build_pipeline(zoo.build_pipeline)  # train_zoo_model builds its pipeline through this name
    t = time.time()
    card = zoo.train_zoo_model('chest', work / 'chest_ztsnr', work_dir=work / 'train', progress=not a.smoke,
                               vae_from=PREVIOUS / 'vae', **{**previous_recipe(), **ov})
    print('trained in', round(time.time() - t, 1), 's:', card['wall_time_s'], '\nselection:', card['snapshot_selection'], flush=True)
    pipe = load_pipeline(work / 'chest_ztsnr')
    print('scheduler:', {k: pipe.scheduler.config[k] for k in ('prediction_type', 'rescale_betas_zero_snr', 'timestep_spacing')})
    w = previous_recipe()['guidance_scale']
    q = zoo.evaluate_zoo_model('chest', pipe, n=n, num_inference_steps=steps, n_invert=min(64, n), guidance_scale=w,
                               guidance_interval=previous_recipe()['guidance_interval'])
    print('card figures at seed 0:', json.dumps({k: q[k] for k in ('prompt_adherence', 'oracle_fd', 'inversion')}), flush=True)
    rows = seed_rows(pipe, n, steps, w)
    print('over the seeds:', round(sum(r['generated_vs_real'] for r in rows) / sum(r['real_vs_real_floor'] for r in rows), 3))


if __name__ == '__main__': main()
