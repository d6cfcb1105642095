"""Check medcf's diffusion paths on a GPU (not a test: pytest does not collect it; CI has no GPU).

    python tests/gpu_check.py --out /tmp/gpu_check            # on a machine with CUDA
    python tests/gpu_check.py --out /tmp/cpu_check --device cpu --small   # a rehearsal of the same code on the CPU

On the device it runs what a user of the course runs there: `load_pipeline('chest', device=..., dtype=...)` in float32,
bfloat16 and float16, and with the autoencoder left on the CPU (offloading); `generate` (guidance at every step and in an interval, the signal leak, eta > 0 with log-probabilities,
gradients through the sampler, trajectories re-scored for DDPO, a run stopped and continued as in a caption switch); `ddim_invert` with its exact-reconstruction check, `invert_latents`
(and `Inversion.at` for a depth sweep) and `regenerate` (an edit);
`classifier_guidance` through the decoder and `noise_prediction_error` with one timestep per latent; `counterfactual_report` of an
`inversion_editor` on the device pipeline and LiT scores of device images; `finetune` (EMA, resume, a state moved between the device and the CPU, bfloat16
autocast); `train_vae` (also with `pixel_weights`); the oracle reading GPU images, its saliency maps and `ReadingDistance`. Each figure is compared with the same call on the CPU where the two
should agree. It prints one JSON record per check and writes them to OUT/gpu_check.json; any failed check exits non-zero.
"""
import argparse, json, sys, tempfile, time, warnings
from pathlib import Path
import numpy as np, torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from medcf.diffusion import (load_pipeline, generate, ddim_invert, finetune, train_vae, encode_prompts, sample_latents, trajectory_log_probs, step_generators,
                             invert_latents, regenerate, classifier_guidance, noise_prediction_error, encode_images, inversion_editor)
from medcf.oracles import load_oracle, load_lit
from medcf.metrics import counterfactual_report
from medcf.zoo import zoo_phantom, prompt_adherence

PROMPTS = ['Chest X-ray showing Pleural Effusion', 'Normal chest X-ray with no significant findings',
           'Chest X-ray showing Cardiomegaly, Support Devices', 'chest x-ray, PA view, female patient aged 34, no finding']


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--small', action='store_true', help='fewer images and steps (the CPU rehearsal)')
    a = ap.parse_args()
    out, dev, records, failed = Path(a.out), a.device, [], []
    out.mkdir(parents=True, exist_ok=True)
    n, steps = (4, 4) if a.small else (64, 50)

    def record(name: str, ok: bool, **figures):
        r = dict(check=name, ok=bool(ok), **figures); records.append(r); print(json.dumps(r, default=str), flush=True)
        if not ok: failed.append(name)
        (out / 'gpu_check.json').write_text(json.dumps(dict(env=env, records=records), indent=1, default=str))

    env = dict(torch=torch.__version__, device=dev, gpu=torch.cuda.get_device_name(0) if dev.startswith('cuda') else None)
    print(json.dumps(env), flush=True)
    prompts = (PROMPTS * n)[:n]

    # 1. the same seeds on the CPU and on the device, float32: the images agree up to kernel rounding
    cpu = load_pipeline('chest')
    ref = generate(cpu, prompts, steps, 3.0, seed=0, guidance_interval=(0, 600))
    pipes = {dt: load_pipeline('chest', device=dev, dtype=getattr(torch, dt)) for dt in ('float32', 'bfloat16', 'float16')}
    for dt, p in pipes.items():
        t = time.time(); x = generate(p, prompts, steps, 3.0, seed=0, guidance_interval=(0, 600)); s = time.time() - t
        d = (x.float().cpu() - ref).abs()
        tol = 0.05 if dt == 'float32' else 0.5
        record(f'generate {dt} vs CPU float32', x.device.type == torch.device(dev).type and x.dtype == getattr(torch, dt)
               and bool(torch.isfinite(x).all()) and float(d.mean()) < tol / 10,  # the mean: in low precision a few pixels may flip
               mean_abs_diff=round(float(d.mean()), 5), max_abs_diff=round(float(d.max()), 4), seconds=round(s, 2))

    # 1c. Lin et al.'s guidance rescale and one negative prompt per image, in every precision (the rescale computes in float32)
    negs = (['Chest X-ray showing Support Devices', 'Chest X-ray showing Cardiomegaly'] * n)[:n]
    ref_r = generate(cpu, prompts, steps, 5.0, seed=0, guidance_rescale=0.7, negative_prompt=negs)
    for dt, q in pipes.items():
        xr = generate(q, prompts, steps, 5.0, seed=0, guidance_rescale=0.7, negative_prompt=negs)
        d = (xr.float().cpu() - ref_r).abs()
        record(f'guidance_rescale=0.7 with per-image negative prompts, {dt} vs CPU float32', bool(torch.isfinite(xr).all())
               and float(d.mean()) < (0.05 if dt == 'float32' else 0.5) / 10, mean_abs_diff=round(float(d.mean()), 5), max_abs_diff=round(float(d.max()), 4))

    p = pipes['float32']
    # 1b. the autoencoder on the CPU beside the UNet on the device (offloading): latents and images go to the VAE's device
    import copy
    off = copy.copy(p); off.vae = copy.deepcopy(p.vae).to('cpu')
    xo = generate(off, prompts, steps, 3.0, seed=0, guidance_interval=(0, 600)); do = (xo.float().cpu() - ref).abs()
    record('autoencoder on the CPU beside the device UNet', bool(torch.isfinite(xo).all()) and float(do.mean()) < 0.005 and xo.device.type == 'cpu'
           and p.vae.device.type == torch.device(dev).type,  # the images come from the CPU autoencoder, and the device pipeline kept its own
           mean_abs_diff=round(float(do.mean()), 5), images_on=str(xo.device))
    # 2. every-step guidance, pure-noise start, and eta > 0 with per-step log-probabilities (DDPO)
    x, o = generate(p, prompts, steps, 3.0, seed=0, eta=1.0, return_latents=True)
    xc, oc = generate(cpu, prompts, steps, 3.0, seed=0, eta=1.0, return_latents=True)
    dlp = (o.log_probs.cpu() - oc.log_probs).abs().max()
    record('eta=1 log-probabilities vs CPU', o.log_probs.shape == (steps, n) and bool(torch.isfinite(o.log_probs).all()) and float(dlp) < 0.05,
           max_abs_diff=round(float(dlp), 5), mean_log_prob=round(float(o.log_probs.mean()), 4))
    x0 = generate(p, prompts, steps, 3.0, seed=0, signal_leak=False)
    record('signal_leak=False differs', float((x0 - generate(p, prompts, steps, 3.0, seed=0)).abs().mean()) > 1e-3)

    # 3. gradients through the sampler, to the starting latents (what guidance and DDPO-style training need)
    z = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0)).to(dev).requires_grad_(True)
    cond, unc = encode_prompts(p, prompts[:2]).to(dev), encode_prompts(p, [''] * 2).to(dev)
    lat = sample_latents(p, z, cond, unc, 4, 3.0, grad=True, checkpoint=True).latents
    lat.pow(2).mean().backward()
    record('gradient through 4 sampler steps', z.grad is not None and bool(torch.isfinite(z.grad).all()) and float(z.grad.abs().sum()) > 0,
           grad_norm=round(float(z.grad.norm()), 5))
    gens = [torch.Generator().manual_seed(k) for k in range(2)]  # CPU generators: the step noise is drawn on the CPU (image j's, whatever the device)
    tr = sample_latents(p, z.detach(), cond, unc, 4, 3.0, eta=1.0, generators=gens, return_trajectory=True)
    bias = p.unet.conv_out.bias.requires_grad_(True)
    rs = trajectory_log_probs(p, tr, cond, unc, 3.0, eta=1.0)  # DDPO's re-scoring, differentiable in the weights
    rs.sum().backward()
    gw = bias.grad; bias.grad = None; bias.requires_grad_(False)
    record('trajectory_log_probs re-scores the sampled trajectory on the device', bool(torch.allclose(rs.detach(), tr.log_probs, atol=1e-3))
           and gw is not None and bool(torch.isfinite(gw).all()), max_abs_diff=round(float((rs.detach() - tr.log_probs).abs().max()), 6))

    # 3b. a caption switch (2503.23623): a run stopped with end_step and continued equals one run, step noise included
    one = sample_latents(p, z.detach(), cond, unc, 6, 3.0, eta=1.0, generators=step_generators(7, 2))
    two = sample_latents(p, sample_latents(p, z.detach(), cond, unc, 6, 3.0, eta=1.0, generators=step_generators(7, 2), end_step=3), cond, unc)
    dc = float((two.latents - one.latents).abs().max())
    record('a run stopped at step 3 and continued equals one run on the device (eta=1)', dc < 1e-4 and two.latents.device.type == torch.device(dev).type,
           max_abs_diff=dc)

    _, gt = generate(p, prompts[:2], 4, 3.0, seed=1, eta=1.0, return_trajectory=True)  # DDPO's trajectories from generate: seeding and signal leak included
    with torch.no_grad(): rg = trajectory_log_probs(p, gt.select([1, 0]), steps=[3, 0])  # the recorded embeddings, eta and guidance; a minibatch and two steps
    record('generate(return_trajectory=True) re-scored from its recorded settings on the device',
           bool(torch.allclose(rg, gt.log_probs[[3, 0]][:, [1, 0]], atol=1e-3)), max_abs_diff=round(float((rg - gt.log_probs[[3, 0]][:, [1, 0]]).abs().max()), 6))

    # 4. DDIM inversion with the exact-reconstruction check, then editing by regeneration on the inversion's grid
    real = zoo_phantom('chest').sample(n, seed=10_000)
    oracle_cpu = load_oracle('chest')
    edits = {}
    for name, q in (('device', p), ('cpu', cpu)):
        inv = ddim_invert(q, real.images, list(real.prompts), num_inference_steps=steps, fixed_point_iters=2, check=True)
        record(f'ddim_invert on {name}', inv.image_mae - inv.vae_mae <= 0.02, image_mae=round(inv.image_mae, 4),
               vae_floor=round(inv.vae_mae, 4), latent_error=round(inv.latent_error, 4))
        part = invert_latents(q, inv.z0, list(real.prompts), num_inference_steps=steps, start_step=steps // 2, check=False)
        if name == 'device':  # one inversion with its trajectory serves a sweep over the edit's depth
            deep = invert_latents(q, inv.z0[:4], list(real.prompts)[:4], num_inference_steps=steps, check=False, return_trajectory=True)
            da = float((deep.at(steps // 2).latents - part.latents[:4]).abs().max())
            record('Inversion.at(k) on the device equals inverting to step k', da < 1e-4, max_abs_diff=da)
        edits[name] = regenerate(q, part, 'Chest X-ray showing Pleural Effusion', guidance_scale=5.0).float().cpu()
    # classifier guidance (gradients through the decoder inside the no-grad sampler) and the denoising error, on the device
    o_dev = load_oracle('chest')
    o_dev.net.to(dev)
    lp = lambda im: torch.nn.functional.logsigmoid(o_dev.logits(im, grad=True, bounded=False)['effusion'])
    cg = {name: generate(q, [PROMPTS[1]] * 2, steps, 3.0, seed=2, guidance_fn=classifier_guidance(q, lp if name == 'device' else
                         (lambda im: torch.nn.functional.logsigmoid(oracle_cpu.logits(im, grad=True, bounded=False)['effusion'])), 0.3)).float().cpu()
          for name, q in (('device', p), ('cpu', cpu))}
    record('classifier_guidance on the device matches the CPU', float((cg['device'] - cg['cpu']).abs().mean()) < 0.05,
           mean_abs_diff=round(float((cg['device'] - cg['cpu']).abs().mean()), 5))
    zc = encode_images(cpu, real.images[:2]); nz = torch.randn(zc.shape, generator=torch.Generator().manual_seed(0)); cc = encode_prompts(cpu, PROMPTS[:2])
    npe = {name: noise_prediction_error(q, zc, cc, [200, 700], nz).float().cpu() for name, q in (('device', p), ('cpu', cpu))}
    record('noise_prediction_error (one timestep per latent) on the device matches the CPU', bool(torch.allclose(npe['device'], npe['cpu'], rtol=0.05, atol=1e-3)),
           device=[round(float(v), 5) for v in npe['device']], cpu=[round(float(v), 5) for v in npe['cpu']])
    record('invert_latents + regenerate: device edit matches the CPU edit', float((edits['device'] - edits['cpu']).abs().mean()) < 0.05,
           mean_abs_diff=round(float((edits['device'] - edits['cpu']).abs().mean()), 5))

    # 5. the oracle reads images that live on the device, and its adherence matches the CPU's on the same seeds
    oracle = load_oracle('chest')
    adh = prompt_adherence(p, oracle, 'chest', n=n, num_inference_steps=steps, guidance_scale=3.0, guidance_interval=(0, 600))
    adh_c = prompt_adherence(cpu, oracle, 'chest', n=n, num_inference_steps=steps, guidance_scale=3.0, guidance_interval=(0, 600))
    record('prompt_adherence, device pipeline + CPU oracle', bool((adh - adh_c).abs().max() <= 2 / n + 1e-9),
           device=adh.round(4).to_dict(), cpu=adh_c.round(4).to_dict())

    # 5b. the metrics score an editor that runs on the device (its images come back there), and the LiT tower reads device images
    ph, fb = zoo_phantom('chest'), zoo_phantom('chest').sample(n, seed=10_001)
    caps = lambda v: ph.counterfactual(fb, **v).prompts
    flip = 1 - fb.attrs.effusion.to_numpy()
    rep = {name: counterfactual_report(inversion_editor(q, caps, steps, start_step=steps // 2), ph, fb, oracle.predict, leakage_attributes=['sex', 'view'], effusion=flip)
           for name, q in (('device', p), ('cpu', cpu))}
    record('counterfactual_report of inversion_editor, device pipeline vs CPU', all(abs(rep['device'][k] - rep['cpu'][k]) < 0.05 for k in ('mae_inside', 'mae_outside', 'composition', 'reversibility')),
           device=rep['device'].drop('leakage_worst').astype(float).round(4).to_dict(), cpu=rep['cpu'].drop('leakage_worst').astype(float).round(4).to_dict())
    lit = load_lit('chest'); xl = fb.images.to(dev)
    d_dev = lit.direction_score(xl, ph.counterfactual(fb, effusion=flip).images.to(dev), fb.prompts, caps(dict(effusion=flip)))
    d_cpu = lit.direction_score(fb.images, ph.counterfactual(fb, effusion=flip).images, fb.prompts, caps(dict(effusion=flip)))
    record('LiT direction score of device images matches the CPU', d_dev.device == xl.device and bool(torch.allclose(d_dev.cpu(), d_cpu, atol=1e-4)),
           mean_device=round(float(d_dev.mean()), 4), mean_cpu=round(float(d_cpu.mean()), 4))

    # 6. fine-tuning on the device: EMA, a checkpoint and its resume, and bfloat16 autocast
    data = zoo_phantom('chest').sample(256, seed=3)
    ft = load_pipeline('chest', device=dev)
    with tempfile.TemporaryDirectory() as d:
        h1 = finetune(ft, data, steps=10, batch_size=32, lr=1e-4, warmup=2, ckpt_dir=d, ckpt_every=5, progress=False)
        with warnings.catch_warnings():  # going on to more steps than the state was saved for is this check's point: its schedule warning is expected
            warnings.filterwarnings('ignore', message='.*changes the learning-rate schedule')
            h2 = finetune(ft, data, steps=14, batch_size=32, lr=1e-4, warmup=2, ckpt_dir=d, ckpt_every=5, progress=False)
    on_dev = all(q.device.type == torch.device(dev).type for q in ft.unet.parameters())
    record('finetune 10 steps, then resumed to 14', on_dev and h2['steps'] == 14 and np.isfinite(h1['loss']).all() and np.isfinite(h2['loss']).all(),
           loss_first=round(float(h1['loss'][0]), 4), loss_last=round(float(h2['loss'][-1]), 4), seconds=round(h1['seconds'], 2))
    with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():  # a state saved on the device resumes on the CPU, and one saved there back on the device
        warnings.filterwarnings('ignore', message='.*changes the learning-rate schedule')
        kw = dict(data=data, batch_size=32, lr=1e-4, warmup=2, ckpt_dir=d, ckpt_every=2, snapshot_every=2, progress=False)
        finetune(load_pipeline('chest', device=dev), steps=4, **kw)
        h_cpu = finetune(load_pipeline('chest', device='cpu'), steps=6, **kw)
        back = load_pipeline('chest', device=dev); h_dev = finetune(back, steps=8, **kw)
    where = lambda h: {t.device.type for v in h['snapshots'].values() for t in v}
    record('finetune state moved between the device and the CPU', h_cpu['start'] == 4 and h_dev['start'] == 6 and where(h_cpu) == {'cpu'}
           and where(h_dev) == {torch.device(dev).type} and np.isfinite(h_dev['loss']).all(), snapshots=sorted(h_dev['snapshots']))
    h3 = finetune(load_pipeline('chest', device=dev), data, steps=10, batch_size=32, lr=1e-4, warmup=2, autocast='bf16', progress=False)
    record('finetune under bfloat16 autocast', np.isfinite(h3['loss']).all(), loss_mean=round(float(np.mean(h3['loss'])), 4))
    items = [(data.images[i], data.prompts[i]) for i in range(len(data))]  # a Dataset of CPU items, as a real image reader gives
    runs = [load_pipeline('chest', device=dev) for _ in range(2)]
    h4, h5 = [finetune(q, items, steps=6, batch_size=32, lr=1e-4, warmup=2, stream=True, num_workers=k, progress=False) for q, k in zip(runs, (0, 2))]
    same = bool(np.abs(np.array(h4['loss']) - np.array(h5['loss'])).max() < 1e-3)  # the same batches (GPU kernels need not be bitwise repeatable)
    record('finetune stream=True, with and without DataLoader workers', same and np.isfinite(h4['loss']).all(),
           loss_mean=round(float(np.mean(h4['loss'])), 4), seconds=round(h4['seconds'], 2), seconds_2_workers=round(h5['seconds'], 2))

    # 7. the autoencoder trains on the device (float32 and bfloat16 autocast)
    for ac in (None, 'bf16'):
        v = load_pipeline('chest', device=dev)
        hv = train_vae(v, data.images, steps=10, batch_size=16, lr=1e-4, crop=32, autocast=ac, progress=False)
        record(f'train_vae autocast={ac}', np.isfinite(hv['loss']).all(), loss_last=round(float(hv['loss'][-1]), 4))

    # 7b. the attribute-aware pieces on the device: saliency, the reading distance as a loss, a pixel-weighted decoder round
    from medcf.oracles import attribute_saliency, ReadingDistance
    o_dev = load_oracle('chest'); o_dev.net.to(dev)
    x8, y8 = data.images[:8], data.images[8:16]
    sc, sd = attribute_saliency(oracle, x8, 'age'), attribute_saliency(o_dev, x8.to(dev), 'age')
    record('attribute_saliency on the device vs CPU', bool(torch.allclose(sc, sd, atol=1e-2, rtol=1e-2)), max_abs_diff=round(float((sc - sd).abs().max()), 5))
    xr = x8.to(dev).clone().requires_grad_(True); dd = ReadingDistance(o_dev, 'age')(xr, y8.to(dev)); dd.sum().backward()
    dc = ReadingDistance(oracle, 'age')(x8, y8)
    record('ReadingDistance on the device vs CPU', dd.device == xr.device and bool(torch.allclose(dd.detach().cpu(), dc, atol=1e-2))
           and xr.grad is not None and bool(torch.isfinite(xr.grad).all()), max_abs_diff_years=round(float((dd.detach().cpu() - dc).abs().max()), 5))
    v = load_pipeline('chest', device=dev); S = attribute_saliency(oracle, data.images[:16], 'age')
    hv = train_vae(v, data.images, steps=5, batch_size=16, lr=1e-4, crop=32, decoder_only=True, pixel_weights=1 + 0.25 * S, progress=False)
    record('train_vae decoder round with pixel_weights', bool(np.isfinite(hv['loss']).all()), loss_last=round(float(hv['loss'][-1]), 4))

    # 7b. functions that seed torch's generators leave the caller's CUDA stream as it was (keeps_global_rng)
    if dev.startswith('cuda'):
        from medcf.diffusion import build_pipeline
        torch.manual_seed(5); want = torch.rand(3, device=dev)
        torch.manual_seed(5); build_pipeline(channels=1, size=32, vae_blocks=(8, 16), unet_blocks=(16, 32), unet_attention=(False, True), seed=0)
        record("build_pipeline leaves the caller's CUDA generator as it was", bool(torch.equal(torch.rand(3, device=dev), want)))

    # 8. sampling throughput at 50 DDIM steps with guidance, batch 64 (printed, not asserted)
    if not a.small:
        for dt in ('float32', 'bfloat16'):
            q = pipes[dt]; generate(q, (PROMPTS * 16)[:64], 5, 3.0, seed=0)
            if dev.startswith('cuda'): torch.cuda.synchronize()
            t = time.time(); generate(q, (PROMPTS * 16)[:64], 50, 3.0, seed=1)
            if dev.startswith('cuda'): torch.cuda.synchronize()
            record(f'throughput {dt}', True, images_per_s=round(64 / (time.time() - t), 1))
    print('FAILED: ' + ', '.join(failed) if failed else 'all checks passed', flush=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
