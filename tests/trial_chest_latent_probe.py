"""Is the judge's age reading still in the shipped chest latents? (a diagnostic, not a test, not collected by pytest)

    python tests/trial_chest_latent_probe.py --out /tmp/probe                       # ~9 min on 2 cores
    python tests/trial_chest_latent_probe.py --out /tmp/probe --n 512 --steps 20 --n_val 64   # the same code, smoke

The chest round trip moves the judge's age reading by ~2.2 y (validation) where a second exposure moves it by ~1.1 y. Is the
detail lost by the encoder (not in the 4x16x16 latents) or by the decoder (in the latents, not drawn back)? A small CNN probe
reads the latents (the shipped encoder's posterior mean, standardised per channel) and regresses the judge's age read on the
grain-free render of the same chest (`ChestPhantom(grain=0)`: what an autoencoder that cannot keep the grain should aim at),
trained on the recipe's training images (n, data seed 0), measured on the validation set (seed 30_000). If the probe reads that
age far closer than the decoder + judge do, the latents hold the detail and the decoder is what loses it.
"""
import argparse, json, time
from pathlib import Path
import numpy as np, torch, torch.nn as nn
from medcf.diffusion import load_pipeline, vae_roundtrip
from medcf.oracles import load_oracle
from medcf.zoo import zoo_phantom, RECIPES
from trial_chest_denoising_round import grain_free


@torch.no_grad()
def encode(vae, x: torch.Tensor, bs: int = 256) -> torch.Tensor:
    "Posterior means of `x`, in batches."
    return torch.cat([vae.encode(x[i:i + bs].float()).latent_dist.mean for i in range(0, len(x), bs)])


def age_read(judge, x: torch.Tensor) -> torch.Tensor:
    return torch.tensor(judge.predict(x).age.to_numpy(), dtype=torch.float32)


def probe_net(c: int, side: int) -> nn.Module:
    "Two stride-2 stages of 3x3 convs on c x side x side latents, then an MLP to one number."
    return nn.Sequential(nn.Conv2d(c, 64, 3, padding=1), nn.GELU(), nn.Conv2d(64, 64, 3, padding=1), nn.GELU(),
                         nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.GELU(), nn.Conv2d(128, 128, 3, padding=1), nn.GELU(),
                         nn.Conv2d(128, 128, 3, stride=2, padding=1), nn.GELU(), nn.Flatten(),
                         nn.Linear(128 * (side // 4) ** 2, 256), nn.GELU(), nn.Linear(256, 1))


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--out', required=True)
    ap.add_argument('--n', type=int, default=RECIPES['chest']['n_images']); ap.add_argument('--steps', type=int, default=4000)
    ap.add_argument('--n_val', type=int, default=1024)
    a = ap.parse_args(); out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2); torch.manual_seed(0); t = time.time()
    r, judge, pipe = RECIPES['chest'], load_oracle('chest'), load_pipeline('chest')
    tr = zoo_phantom('chest').sample(a.n, seed=r['data_seed']).images
    ztr, ytr = encode(pipe.vae, tr), age_read(judge, grain_free(a.n, r['data_seed']))
    va = zoo_phantom('chest').sample(a.n_val, seed=30_000).images
    zva, yva, real = encode(pipe.vae, va), age_read(judge, grain_free(a.n_val, 30_000)), age_read(judge, va)
    rt = age_read(judge, vae_roundtrip(pipe, va).float().cpu())
    mu, sd = ztr.mean((0, 2, 3), keepdim=True), ztr.std((0, 2, 3), keepdim=True)
    ztr, zva, ym, ys = (ztr - mu) / sd, (zva - mu) / sd, ytr.mean(), ytr.std()
    net = probe_net(ztr.shape[1], ztr.shape[-1]); g = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4); curve = []
    for s in range(a.steps):
        for grp in opt.param_groups: grp['lr'] = 1e-3 * 0.5 * (1 + np.cos(np.pi * s / a.steps))
        i = torch.randint(0, len(ztr), (128,), generator=g)
        loss = (net(ztr[i]).squeeze(1) - (ytr[i] - ym) / ys).abs().mean(); opt.zero_grad(); loss.backward(); opt.step()
        if (s + 1) % max(1, a.steps // 4) == 0:
            with torch.no_grad(): p = net(zva).squeeze(1) * ys + ym
            curve.append([s + 1, round(float((p - yva).abs().mean()), 3)]); print('step', *curve[-1], flush=True)
    mae = lambda u, v: round(float((u - v).abs().mean()), 3)
    rec = dict(n_train=a.n, steps=a.steps, validation=dict(seed=30_000, n=a.n_val), curve=curve,
               probe_to_grain_free=mae(p, yva), round_trip_to_grain_free=mae(rt, yva), real_to_grain_free=mae(real, yva),
               round_trip_to_real=mae(rt, real), probe_to_real=mae(p, real),
               round_trip_minus_real_mean=round(float((rt - real).mean()), 3),
               corr_round_trip_shift_vs_real_read=round(float(np.corrcoef((rt - real).numpy(), real.numpy())[0, 1]), 3),
               seconds=round(time.time() - t, 1))
    print(json.dumps(rec, indent=1)); (out / 'latent_probe.json').write_text(json.dumps(rec, indent=1))


if __name__ == '__main__':
    main()
