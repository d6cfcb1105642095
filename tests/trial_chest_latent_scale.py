"""Reproduce the previous chest card's (data_samples/models/history/chest_v1) `latent_scale_trial` and `gaussian_leak_trial` (measured 2026-12-03; not a test, not collected by pytest).

    python tests/trial_chest_latent_scale.py --work /tmp/chest_sf            # full: ~37 min of UNet training + ~20 min of figures on 2 cores
    python tests/trial_chest_latent_scale.py --work /tmp/sf --smoke           # the same code, a few steps and 16 images (~30 s)

1. Copy the shipped chest autoencoder with `scaling_factor` set so that the per-image content of the latents has unit variance
   (1 / rms over latent elements of their std across images; the shipped factor, 1 / std over all elements, counts the mean chest
   latent as variance).
2. `train_zoo_model('chest', ..., vae_from=that folder)` trains the recipe's UNet on it, snapshot selection included.
3. The card's figures at seed 0 (`evaluate_zoo_model`), then the Frechet ratio and the ages the oracle reads at seeds 0-2,
   with the pipeline's mean-latent leak, the mean of 4096 freshly drawn training-population latents, and a Gaussian leak (their
   mean and covariance), for the rescaled model and the shipped one. The card's rows: latent_scale_trial = rescaled 'mean' (the
   same as its card figures), gaussian_leak_trial.shipped_mean = shipped 'refit_mean', shipped_gaussian and latent_scale_gaussian =
   'gaussian'.
"""
import argparse, json, shutil, sys, time
from pathlib import Path
import torch
from medcf import zoo
from medcf.diffusion import load_pipeline, encode_images, initial_latents, ddim_scheduler, generate, _alpha
from medcf.oracles import load_oracle
from medcf.metrics import oracle_frechet_distance
sys.path.insert(0, str(Path(__file__).parent))
from trial_chest_ztsnr import PREVIOUS, previous_recipe  # the checkpoint these trials were measured on, and its recipe


def rescaled_vae(work: Path, n: int) -> tuple:
    "Write work/vae_rescaled: the shipped chest autoencoder with the per-image-variance scaling factor; returns (factor, folder)."
    pipe = load_pipeline(PREVIOUS)
    z = encode_images(pipe, zoo.zoo_phantom('chest', 0).sample(n, seed=0).images, sample=True, generator=torch.Generator().manual_seed(0))
    sf = pipe.vae.config.scaling_factor / float(z.std(0).pow(2).mean().sqrt())
    folder = work / 'vae_rescaled'
    if folder.exists(): shutil.rmtree(folder)
    shutil.copytree(PREVIOUS / 'vae', folder)
    cfg = json.loads((folder / 'config.json').read_text()); cfg['scaling_factor'] = sf
    (folder / 'config.json').write_text(json.dumps(cfg, indent=2))
    return sf, folder


def leak_rows(pipe, oracle, n: int, n_fit: int, steps: int, w: float) -> dict:
    "Frechet ratio and age read per seed, x_T with the pipeline's mean leak and with a Gaussian leak fitted on n_fit training latents."
    z = encode_images(pipe, zoo.zoo_phantom('chest', 0).sample(n_fit, seed=0).images).flatten(1).double()
    mu, cov = z.mean(0), torch.cov(z.T)
    L = torch.linalg.cholesky(cov + 1e-6 * torch.eye(len(cov), dtype=cov.dtype))
    ddim = ddim_scheduler(pipe, steps); ab = _alpha(ddim, int(ddim.timesteps[0])).double()
    out = dict(leading_eigenvalue=round(float(torch.linalg.eigvalsh(cov)[-1]), 1), alpha_bar_first_step=round(float(ab), 6), mean=[], refit_mean=[], gaussian=[])
    for seed in (0, 1, 2):
        _, _, ra, rb, floor = zoo._held_out('chest', pipe, oracle, n, seed)
        caps = zoo.training_captions('chest', rb, zoo._recipe('chest')['prism_share'], seed)
        noise = initial_latents(pipe, n, seed + 1).double().flatten(1)
        for mode in ('mean', 'refit_mean', 'gaussian'):  # the pipeline's own leak; the mean of the n_fit latents below; a Gaussian draw
            lk = (pipe.signal_leak.double().flatten().expand(n, -1) if mode == 'mean' else mu.expand(n, -1) if mode == 'refit_mean' else
                  mu + torch.randn(n, len(mu), generator=torch.Generator().manual_seed(10_000 + seed + 1), dtype=torch.double) @ L.T)
            xT = (ab.sqrt() * lk + (1 - ab).sqrt() * noise).float().view(n, *pipe.signal_leak.shape)
            x = generate(pipe, caps, steps, w, seed=seed + 1, latents=xT)
            fd, age = oracle_frechet_distance(oracle.features, ra.images, x), oracle.predict(x)['age'].to_numpy()
            out[mode].append(dict(seed=seed, generated_vs_real=round(fd, 3), real_vs_real_floor=round(floor, 4), ratio=round(fd / floor, 3),
                                  age_read_mean=round(float(age.mean()), 1), age_read_sd=round(float(age.std()), 1)))
            print(mode, out[mode][-1], flush=True)
    return out


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--work', required=True, help='folder for the training state and the rescaled checkpoint')
    ap.add_argument('--smoke', action='store_true', help='a few steps and 16 images: checks the code, not the figures')
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    work = Path(a.work); work.mkdir(parents=True, exist_ok=True)
    n, n_fit, steps = (16, 64, 5) if a.smoke else (256, 4096, 50)
    over = dict(previous_recipe(), **(dict(unet_steps=4, select_every=2, select_n=16, select_steps=3, n_images=256) if a.smoke else {}))
    sf, vae_folder = rescaled_vae(work, n_fit)
    print('scaling factor', sf, flush=True)
    t = time.time()
    card = zoo.train_zoo_model('chest', work / 'checkpoint', work_dir=work, progress=False, vae_from=vae_folder, **over)
    print('trained', json.dumps(dict(wall=card['wall_time_s'], selection=card['snapshot_selection'])), f'({time.time() - t:.0f} s)', flush=True)
    oracle, w = load_oracle('chest'), over['guidance_scale']
    pipe = load_pipeline(work / 'checkpoint')
    if not a.smoke: print('card figures, seed 0:', json.dumps(zoo.evaluate_zoo_model('chest', pipe, oracle, seed=0, guidance_scale=w, guidance_interval=over['guidance_interval'])), flush=True)
    for name, p in (('rescaled', pipe), ('shipped', load_pipeline(PREVIOUS))):  # 'shipped' when the trial ran: the previous checkpoint
        print(name, json.dumps(leak_rows(p, oracle, n, n_fit, steps, w)), flush=True)
