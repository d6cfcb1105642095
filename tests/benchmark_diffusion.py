"""Throughput of medcf.diffusion beside naive baselines measured in the same run (printed, never asserted).

    python tests/benchmark_diffusion.py [--steps 50] [--batch 64] [--train-steps 10] [--threads 2]

Sampling: images/s at `steps` DDIM steps with classifier-free guidance, batch `batch`:
  ours  = one batched UNet call for both guidance halves + cached prompt embeddings (`medcf.diffusion.generate`)
  naive = two UNet calls per step (conditional, unconditional) + prompts re-encoded for every batch.
Training: samples/s of the UNet noise-prediction step, batch `batch`:
  ours  = latents encoded once, prompt embeddings cached (`medcf.diffusion.finetune`)
  naive = VAE encoder and text encoder run on every batch.
Then `finetune` itself, stacked and with stream=True (which runs the VAE and text encoder on every batch, as naive does).
Not collected by pytest (the file name does not start with test_)."""
import argparse, copy, time
import torch, torch.nn.functional as F
from medcf import diffusion as D


def naive_generate(pipe, prompts, steps, w, seed=0):
    "The textbook loop: encode prompts (no cache), two UNet calls per step."
    cond = D.encode_prompts(pipe, prompts, cache=False)
    unc = D.encode_prompts(pipe, [''] * len(prompts), cache=False)
    ddim = D.ddim_scheduler(pipe, steps)
    x = D.initial_latents(pipe, len(prompts), seed)
    with torch.no_grad():
        for t in ddim.timesteps:
            ec = pipe.unet(x, t, encoder_hidden_states=cond).sample
            eu = pipe.unet(x, t, encoder_hidden_states=unc).sample
            x = ddim.step(eu + w * (ec - eu), t, x).prev_sample
        return D.decode_latents(pipe, x)


def train_steps(pipe, images, prompts, n, batch, cached):
    unet = pipe.unet.train().requires_grad_(True)
    opt = torch.optim.AdamW(unet.parameters(), 1e-4)
    acp = pipe.scheduler.alphas_cumprod
    g = torch.Generator().manual_seed(0)
    if cached:
        mu, sd = D._posterior(pipe, images)
        uniq = sorted(set(prompts)); emb = D.encode_prompts(pipe, uniq); pix = torch.tensor([uniq.index(p) for p in prompts])
    t0 = time.perf_counter()
    for _ in range(n):
        idx = torch.randint(len(images), (batch,), generator=g)
        if cached:
            z, c = mu[idx] + sd[idx] * torch.randn(mu[idx].shape, generator=g), emb[pix[idx]]
        else:
            with torch.no_grad():
                z = pipe.vae.encode(images[idx]).latent_dist.sample(g) * pipe.vae.config.scaling_factor
                c = D.encode_prompts(pipe, [prompts[i] for i in idx], cache=False)
        t = torch.randint(0, len(acp), (batch,), generator=g)
        e = torch.randn(z.shape, generator=g); a = acp[t].view(-1, 1, 1, 1)
        loss = F.mse_loss(unet(a.sqrt() * z + (1 - a).sqrt() * e, t, encoder_hidden_states=c).sample, e)
        opt.zero_grad(); loss.backward(); opt.step()
    unet.eval().requires_grad_(False)
    return n * batch / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--steps', type=int, default=50); ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--train-steps', type=int, default=10); ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--model', default='chest', help="zoo name or folder; falls back to an untrained toy model of the same size")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try: pipe = D.load_pipeline(a.model)
    except (FileNotFoundError, ValueError): pipe = D.build_pipeline()
    from medcf.phantoms import ChestPhantom
    from medcf.data import chest_prompt
    b = ChestPhantom(64, seed=0).sample(max(256, a.batch), seed=1)
    prompts = [chest_prompt(r) for _, r in b.attrs.iterrows()]
    images = b.images if pipe.vae.config.in_channels == 1 else b.images.repeat(1, 3, 1, 1)
    ps = prompts[:a.batch]
    D.generate(pipe, ps[:2], num_inference_steps=2)  # warm-up
    rows = []
    for name, fn in (('naive', lambda: naive_generate(pipe, ps, a.steps, 3.0)),
                     ('ours', lambda: D.generate(pipe, ps, a.steps, 3.0))):
        t0 = time.perf_counter(); fn(); rows.append((name, a.batch / (time.perf_counter() - t0)))
    print(f"sampling, {a.steps} DDIM steps, guidance 3, batch {a.batch}, {torch.get_num_threads()} threads (images/s):")
    for n, v in rows: print(f"  {n:6s} {v:8.2f}")
    print(f"  speed-up {rows[1][1] / rows[0][1]:.2f}x")
    tr = [('naive', train_steps(pipe, images, prompts, a.train_steps, a.batch, False)),
          ('ours', train_steps(pipe, images, prompts, a.train_steps, a.batch, True))]
    print(f"UNet training, batch {a.batch}, {a.train_steps} steps (samples/s; ours excludes the one-off latent encoding):")
    for n, v in tr: print(f"  {n:6s} {v:8.1f}")
    print(f"  speed-up {tr[1][1] / tr[0][1]:.2f}x")
    print(f"finetune itself, batch {a.batch}, {a.train_steps} steps (samples/s in its loop; stream=True encodes every batch, for data larger than memory):")
    for name, stream in (('stacked', False), ('stream=True', True)):
        h = D.finetune(copy.deepcopy(pipe), (images, prompts), steps=a.train_steps, batch_size=a.batch, warmup=1, ema_decay=None, stream=stream, progress=False)
        print(f"  {name:11s} {a.train_steps * a.batch / h['train_seconds']:8.1f}")


if __name__ == '__main__':
    main()
