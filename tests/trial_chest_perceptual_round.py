"""Can a perceptual loss restore the chest autoencoder's age detail? (not a test, not collected by pytest)

    python tests/trial_chest_perceptual_round.py --out /tmp/perc   # 2 x 1000 decoder steps, ~15 min on 2 cores
    python tests/trial_chest_perceptual_round.py --out /tmp/perc --steps 4 --n_val 64   # the same code, smoke
    python tests/trial_chest_perceptual_round.py --out /tmp/perc --lr 2e-3 --lam_mults 1   # one lam, another decoder lr (card: decoder_lr)

The perceptual loss is measured by the second chest oracle shipped as `data_samples/oracles/chest/perceptual`
(`load_perceptual('chest')`: the judge's recipe with seed 1, `train_oracle(ChestPhantom(size=64), steps=1800, batch_size=64,
seed=1)`, 185 s here; `--perceptual` takes another folder holding perceptual.safetensors/.json); the shipped oracle (seed 0) judges, so the autoencoder is not trained on its own ruler. From the shipped chest autoencoder, one decoder-only round (encoder frozen: the
latents, the UNet and the signal leak stay valid) at the recipe's decoder lr, batch and crop, loss L1 + KL + lam *
`PerceptualDistance`, for lam = lam1 (the perceptual term equal to the L1 term of the shipped autoencoder on 256 training
images) and 10 * lam1. The rule written before it ran (scratch note, 2026-12-04 16:08 UTC): the lam with the higher
validation age-bin agreement is the candidate; adopt it if that agreement rises by >= 0.02, every other attribute stays
>= 0.99, pixel MAE stays <= 1.1x, and the judge's age error against the TRUE age on the round trip falls.
"""
import argparse, json, time
from pathlib import Path
import numpy as np, torch
from medcf.diffusion import load_pipeline, vae_roundtrip, train_vae
from medcf.oracles import load_oracle, load_perceptual, PerceptualDistance, reading_agreement
from medcf.zoo import zoo_phantom, RECIPES, vae_agreement
from trial_chest_decoder_round import agreement


def measure(pipe, judge, other, batch) -> dict:
    "The judge's agreement figures (`agreement`), its age error against the true age before/after, and the other oracle's age-bin agreement."
    rt = vae_roundtrip(pipe, batch.images).float().cpu()
    true = batch.attrs.age.to_numpy()
    return dict(**agreement(pipe, judge, batch, rt),  # one round trip for every figure
                judge_age_err_real=round(float(np.abs(judge.predict(batch.images).age - true).mean()), 3),
                judge_age_err_round_trip=round(float(np.abs(judge.predict(rt).age - true).mean()), 3),
                perceptual_oracle_age_bin=round(float(reading_agreement(other, batch.images, rt)['age_bin']), 4))


def card_set_agreement(pipe, judge, batch) -> dict:
    "The judge's agreement per attribute between `batch`'s images and their round trip, rounded: the card's `vae_attribute_agreement`."
    return {k: round(float(v), 4) for k, v in vae_agreement(pipe, judge, batch).items()}


def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--out', required=True); ap.add_argument('--perceptual', default='chest')
    ap.add_argument('--steps', type=int, default=1000); ap.add_argument('--n_val', type=int, default=1024)
    ap.add_argument('--lr', type=float, default=None, help="decoder lr (default: the recipe's vae_decoder_lr)")
    ap.add_argument('--lam_mults', default='1,10', help='multiples of lam1 to train, comma-separated')
    a = ap.parse_args(); out = Path(a.out); out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    r, judge, other = RECIPES['chest'], load_oracle('chest'), load_perceptual(a.perceptual)
    if other.card.get('data_seed') == judge.card.get('data_seed'): raise ValueError('the perceptual oracle must not be the judge (same seed)')
    dist = PerceptualDistance(other)
    val = zoo_phantom('chest').sample(a.n_val, seed=30_000)
    images = zoo_phantom('chest').sample(r['n_images'], seed=r['data_seed']).images
    pipe = load_pipeline('chest')
    before = measure(pipe, judge, other, val); print('shipped autoencoder:', before, flush=True)
    x = images[:256].float(); rt = vae_roundtrip(pipe, x).float().cpu()
    l1, pd0 = float((rt - x).abs().mean()), float(dist(rt, x).mean())
    lam1 = l1 / pd0; print(f'L1 {l1:.5f}, perceptual {pd0:.5f} -> lam1 {lam1:.4f}', flush=True)
    rows = {}
    lr = r['vae_decoder_lr'] if a.lr is None else a.lr
    for lam in [float(m) * lam1 for m in a.lam_mults.split(',')]:
        pipe = load_pipeline('chest'); t = time.time()
        h = train_vae(pipe, images, a.steps, r['vae_batch'], lr, crop=r['vae_crop'], decoder_only=True,
                      perceptual=dist, perceptual_weight=lam, seed=r['data_seed'] + 1, progress=False)
        after = measure(pipe, judge, other, val); after['seconds'] = round(time.time() - t, 1)
        after['train_seconds'] = round(h['seconds'], 1); rows[round(lam, 5)] = after
        print(f'lam {lam:.4f}:', after, flush=True)
        pipe.vae.save_pretrained(out / f'vae_lam{lam:.4f}')
    best = max(rows, key=lambda k: rows[k]['agreement']['age_bin']); c = rows[best]
    gain = c['agreement']['age_bin'] - before['agreement']['age_bin']
    adopt = bool(gain >= 0.02 and min(v for k, v in c['agreement'].items() if k != 'age_bin') >= 0.99
                 and c['pixel_mae'] <= 1.1 * before['pixel_mae'] and c['judge_age_err_round_trip'] < before['judge_age_err_round_trip'])
    rec = dict(steps=a.steps, lr=lr, validation=dict(seed=30_000, n=a.n_val), lam1=round(lam1, 5), before=before, rows=rows,
               candidate=best, age_bin_gain=round(gain, 4), adopted=adopt, perceptual_oracle=a.perceptual)
    (out / 'perceptual_round_trial.json').write_text(json.dumps(rec, indent=1))
    print('candidate lam', best, 'gain', round(gain, 4), '-> adopt by the rule written before the run:', adopt)


if __name__ == '__main__':
    main()
