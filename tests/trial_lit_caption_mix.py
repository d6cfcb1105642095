"""Reproduce the LiT cards' `caption_trial` (measured 2026-12-05; not a test, not collected by pytest).

    python tests/trial_lit_caption_mix.py --work /tmp/lit_mix chest skin   # ~2 min of training per tower on 2 cores, twice per phantom
    python tests/trial_lit_caption_mix.py --work /tmp/lit_mix --smoke chest  # the same code, a few steps and 32 images (~1 min)

Two towers per phantom from nb 03's recipe (`FULL_LIT`, the attribute oracle's frozen body): one on the phantom's own captions
(the towers shipped until 2026-12-05), one on the caption mix the zoo's diffusion models are trained on (`medcf.zoo.caption_mix`,
shipped since). Each is scored on held-out phantoms (data seed 7,000,123) with the phantom's captions and with the papers' short
ones: the direction score of the true counterfactual that sets one attribute from 0 to 1, and a caption swap in the papers' style
(each image picks between its short caption written with the attribute at 0 and at 1).
"""
import argparse, functools, json, time
from pathlib import Path
import numpy as np
from medcf.oracles import train_lit, load_oracle, caption_swap_accuracy
from medcf.zoo import zoo_phantom, caption_mix, paper_prompts

FULL_LIT = dict(steps=2000, batch_size=256, n_train=12_000, seed=1)  # nb 03's recipe
ATTRIBUTES = {'chest': ['effusion', 'devices', 'cardiomegaly'], 'skin': ['melanoma', 'hair', 'ruler', 'ink']}


def scores(lit, name: str, n: int) -> dict:
    "Direction scores (phantom / paper captions) on true counterfactuals and the paper-style caption swap, per attribute."
    ph, r = zoo_phantom(name), {}
    held = ph.sample(n, seed=7_000_123)
    for a in ATTRIBUTES[name]:
        src = held[np.flatnonzero(held.attrs[a].to_numpy() == 0)][:128]
        cf = ph.counterfactual(src, **{a: 1})
        r[f'dir_{a}_phantom'] = lit.direction_score(src.images, cf.images, src.prompts, cf.prompts).mean().item()
        r[f'dir_{a}_paper'] = lit.direction_score(src.images, cf.images, paper_prompts(name, src.attrs), paper_prompts(name, cf.attrs)).mean().item()
        r[f'paper_swap_{a}'] = caption_swap_accuracy(lit, ph, held, a, captions=functools.partial(paper_prompts, name))
    return {k: round(v, 3) for k, v in r.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('names', nargs='+', choices=list(ATTRIBUTES))
    ap.add_argument('--work', required=True, help='folder for the towers and result.json')
    ap.add_argument('--smoke', action='store_true', help='a few steps and 32 images: checks the code, not the figures')
    a = ap.parse_args()
    recipe = dict(FULL_LIT, steps=5, n_train=256, eval_n=8) if a.smoke else FULL_LIT
    out = {}
    for name in a.names:
        t0, out[name] = time.time(), {}
        for label, caps in (('phantom_captions', None), ('caption_mix', functools.partial(caption_mix, name, seed=FULL_LIT['seed']))):
            lit = train_lit(zoo_phantom(name), backbone=load_oracle(name), captions=caps, **recipe)
            lit.save(Path(a.work) / name / label, 'lit', overwrite=True)
            out[name][label] = dict(scores=scores(lit, name, 32 if a.smoke else 500), caption_swap=lit.card['zero_shot_caption_swap'],
                                    wall_time_s=lit.card['wall_time_s'])
        print(name, json.dumps(out[name], indent=1), f"({time.time() - t0:.0f} s)", flush=True)
    (Path(a.work) / 'result.json').write_text(json.dumps(out, indent=1))


if __name__ == '__main__':
    main()
