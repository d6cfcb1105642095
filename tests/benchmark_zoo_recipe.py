"""How long a zoo recipe takes on this machine, from timed steps at the recipe's own settings (printed, never asserted).

    python tests/benchmark_zoo_recipe.py [--threads 2] [--models chest skin] [--vae-steps 30] [--unet-steps 20] [--unet-bf16]

For each recipe in `medcf.zoo.RECIPES`: seconds per VAE step (its batch, crop and `vae_autocast`; a bf16 recipe also gets its float32
baseline printed), per decoder-only step, per UNet step (its batch, on
cached latents, its `unet_autocast`; a bf16 recipe, or --unet-bf16, also gets the other precision printed beside it) and per generated image-step of the snapshot selection (guidance on), each measured after a warm-up;
then the recipe's wall time extrapolated from them: VAE + decoder + UNet steps x their step times + selection. The
issue's budget is 60 minutes per model on 2 CPU cores; run with nothing else on the machine for that figure.
Not collected by pytest (the file name does not start with test_)."""
import argparse, time
import torch
from medcf import zoo
from medcf.diffusion import build_pipeline, train_vae, finetune, generate


def per_step(fn, warm: int, n: int) -> float:
    "Seconds per step of fn(steps) -> seconds, from a run of warm + n steps minus a run of warm steps."
    return (fn(warm + n) - fn(warm)) / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--models', nargs='+', default=list(zoo.RECIPES))
    ap.add_argument('--vae-steps', type=int, default=30); ap.add_argument('--unet-steps', type=int, default=20)
    ap.add_argument('--unet-bf16', action='store_true', help='also time the UNet step in bfloat16 autocast (a float32 recipe)')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"{torch.get_num_threads()} threads; {zoo.hardware()}")
    for name in a.models:
        r = zoo.RECIPES[name]
        n_dec = sum(zoo.decoder_rounds(r['vae_decoder_steps']))  # decoder-only steps over all rounds
        b = zoo.zoo_phantom(name, 0).sample(512, seed=5)
        caps = zoo.training_captions(name, b, r['prism_share'], 0)
        pipe = build_pipeline(r['channels'], r['size'], r['vae_blocks'], r['unet_blocks'], r['latent_channels'], seed=0,
                              unet_attention=r['unet_attention'], unet_text_time=r['unet_text_time'])
        def vae_step(ac, dec_only=False):
            lr = r['vae_decoder_lr'] if dec_only else r['vae_lr']
            return per_step(lambda k: train_vae(pipe, b.images, k, r['vae_batch'], lr, crop=r['vae_crop'], decoder_only=dec_only,
                                                autocast=ac, progress=False)['seconds'], 10, a.vae_steps)
        ac = r.get('vae_autocast')
        vae = vae_step(ac)
        dec = vae_step(ac, True) if n_dec else 0.0
        if ac:  # the same stages in float32, the baseline the autocast is for
            vae32, dec32 = vae_step(None), (vae_step(None, True) if n_dec else 0.0)
            print(f"{name}: VAE stages in float32 {vae32:.3f} / {dec32:.3f} s/step vs {ac} {vae:.3f} / {dec:.3f}: "
                  f"{(r['vae_steps'] * vae32 + n_dec * dec32) / 60:.1f} min vs {(r['vae_steps'] * vae + n_dec * dec) / 60:.1f} min")
        def unet_step(ac):
            return per_step(lambda k: finetune(pipe, (b.images, caps), k, r['unet_batch'], r['unet_lr'], autocast=ac, progress=False)['train_seconds'],
                            5, a.unet_steps)
        uac = r.get('unet_autocast')
        unet = unet_step(uac)
        if uac or a.unet_bf16:  # the other precision, measured in the same run
            other = unet_step(None if uac else 'bf16')
            f32, b16 = (other, unet) if uac else (unet, other)
            print(f"{name}: UNet step float32 {f32:.3f} s vs bf16 {b16:.3f} s ({f32 / b16:.2f}x): "
                  f"{r['unet_steps'] * f32 / 60:.1f} min vs {r['unet_steps'] * b16 / 60:.1f} min for {r['unet_steps']} steps", flush=True)
        def gen(k):
            t0 = time.perf_counter(); generate(pipe, caps[:16], k, r['guidance_scale']); return time.perf_counter() - t0
        img_step = per_step(gen, 2, 8) / 16
        n_snap = r['unet_steps'] // r['select_every'] + 1 if r['select_every'] else 0  # snapshots + the final weights at most
        sel = n_snap * r['select_n'] * r['select_steps'] * img_step
        total = r['vae_steps'] * vae + n_dec * dec + r['unet_steps'] * unet + sel
        print(f"{name}: VAE{' (' + ac + ')' if ac else ''} {vae:.3f} s/step x {r['vae_steps']} = {r['vae_steps'] * vae / 60:.1f} min; "
              f"decoder {dec:.3f} s/step x {n_dec} = {n_dec * dec / 60:.1f} min; "
              f"UNet {unet:.3f} s/step x {r['unet_steps']} = {r['unet_steps'] * unet / 60:.1f} min; "
              f"selection {n_snap} x {r['select_n']} images x {r['select_steps']} steps = {sel / 60:.1f} min; "
              f"recipe ~{total / 60:.1f} min (data rendering and posterior encoding not included: under a minute each)")


if __name__ == '__main__': main()
