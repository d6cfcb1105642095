"""Measure what the shipped models draw of everything their detailed captions name (measured 2026-12-05; not a test, not collected by pytest).

    python tests/measure_caption_adherence.py --out /tmp/adherence.json                 # ~4 min per model on 2 cores
    python tests/measure_caption_adherence.py --out /tmp/adherence.json --write         # ... and add the record to each card
    python tests/measure_caption_adherence.py --out /tmp/a.json --smoke                 # the same code on 12 images and 4 steps

The course's adherence bar asks about the papers' short captions (effusion, devices and cardiomegaly; diagnosis and the five
artifacts). The models were also trained on the phantom's detailed captions, which name more: sex, age, view (chest); skin tone,
the lesion signs and diameter (skin). Here `n` phantom patients drawn observationally (data seed 30,000,000) are captioned by
`phantom.captions` and generated at the card's settings (50 DDIM steps, guidance 3, the recipe's interval, seed 0); the oracle
reads every attribute the captions name (`zoo.attribute_adherence`); age and diameter are asked as the captions write them
(whole years, rounded down; whole millimetres). Skin tone is rare above III, so the skin model is asked again
with tones I-VI drawn equally (`do(skin_tone=...)`, data seed 30,000,001). The record goes into the card as
`detailed_caption_adherence` with --write.
"""
import argparse, json, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from medcf import zoo
from medcf.diffusion import load_pipeline, zoo_dir
from medcf.oracles import load_oracle

ASKED_NOTE = ("age and diameter as the captions write them: whole years rounded down (a caption 'aged 67' was drawn from ages in [67, 68), "
              "so a perfect model is about 0.5 years off on average), whole millimetres")
AS_CAPTIONED = {'age': np.floor, 'diameter': np.round}  # the captions write int(age) years and the diameter to whole mm: that is what is asked
NAMED = {'chest': ['sex', 'age', 'effusion', 'cardiomegaly', 'devices', 'view', 'no_finding'],
         'skin': ['melanoma', 'asymmetry', 'border', 'variegation', 'diameter', 'skin_tone', 'hair', 'ruler', 'ink', 'bubbles', 'dark_corners']}


def measure(name: str, n: int, steps: int) -> dict:
    pipe, oracle, ph = load_pipeline(name), load_oracle(name), zoo.zoo_phantom(name)
    unread = [k for k in NAMED[name] if k not in oracle.names]
    if unread: raise ValueError(f"the {name} oracle does not read {unread}, which the detailed captions name")
    named = NAMED[name]
    asked = lambda t: t[named].assign(**{k: f(t[k]) for k, f in AS_CAPTIONED.items() if k in named})
    kw = dict(num_inference_steps=steps, guidance_scale=3.0, seed=0, guidance_interval=zoo.recipe_interval(name))
    t0 = time.time()
    truth = ph.sample_truth(n, seed=30_000_000)
    rows = zoo.attribute_adherence(pipe, oracle, ph.captions(truth), asked(truth), **kw).assign(draw='observational')
    if name == 'skin':
        tones = np.resize(np.arange(1, 7), n)
        t2 = ph.sample_truth(n, seed=30_000_001, skin_tone=tones)
        more = zoo.attribute_adherence(pipe, oracle, ph.captions(t2), t2[['skin_tone']], **kw).assign(draw='tones I-VI equally')
        rows = pd.concat([rows, more], ignore_index=True)
    return dict(settings=dict(n=n, **{k: v for k, v in kw.items()}, captions='phantom.captions (the detailed style)', asked=ASKED_NOTE, data_seeds=[30_000_000, 30_000_001] if name == 'skin' else [30_000_000]),
                seconds=round(time.time() - t0, 1), rows=json.loads(rows.round(4).to_json(orient='records')))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--out', required=True)
    ap.add_argument('--n', type=int, default=256)
    ap.add_argument('--smoke', action='store_true')
    ap.add_argument('--write', action='store_true', help="add the record to each shipped card (zoo.update_card)")
    ap.add_argument('--note', default='', help="how the run was made, for the card's `where` (e.g. 'on 2 cores beside other work')")
    a = ap.parse_args()
    torch.set_num_threads(2)
    n, steps = (12, 4) if a.smoke else (a.n, 50)
    out = {name: measure(name, n, steps) for name in ('chest', 'skin')}
    Path(a.out).write_text(json.dumps(out, indent=1))
    for name, r in out.items():
        df = pd.DataFrame(r['rows'])
        print(name, f"({r['seconds']} s)"); print(df[df.asked == 'all'].to_string(index=False))
        if name == 'skin': print(df[df.attribute == 'skin_tone'].to_string(index=False))
    if a.write and not a.smoke:
        for name, r in out.items():
            zoo.update_card(zoo_dir() / name, detailed_caption_adherence=dict(
                what="what the model draws of everything its detailed captions name, beyond the bar's short-caption attributes",
                rule="not a bar: a record of what a user may and may not ask this model for; a share is bounded by the oracle's own accuracy on the attribute",
                where=f"tests/measure_caption_adherence.py ({time.strftime('%Y-%m-%d', time.gmtime())}{', ' + a.note if a.note else ''})", **r))


if __name__ == '__main__':
    main()
