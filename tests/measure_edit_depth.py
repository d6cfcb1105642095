"""How deep must an inversion editor invert to add a finding, and to remove one? (measured 2026-12-05; not a test, not collected by pytest)

    python tests/measure_edit_depth.py                  # 24 patients each way, 50 steps: ~30 s on 2 cores
    python tests/measure_edit_depth.py --n 8 --steps 10 # a quicker look

`inversion_editor` inverts under the source captions to `start_step`, then regenerates under the target captions. Adding an
effusion to a chest that has none needs more freedom than removing one: the figures behind `inversion_editor`'s `start_step`
docs. Patients: the first n with (and without) an effusion among 400 chests (data seed 2024), detailed captions
(`phantom.captions`), guidance 5 at every step; scored by `counterfactual_report` against the true counterfactual with the
shipped chest oracle (edit_checks=False: the edit is run once).
"""
import argparse, time, warnings
import numpy as np
from medcf.phantoms import ChestPhantom
from medcf.diffusion import load_pipeline, inversion_editor
from medcf.oracles import load_oracle
from medcf.metrics import counterfactual_report


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--n', type=int, default=24); ap.add_argument('--steps', type=int, default=50)
    ap.add_argument('--starts', type=int, nargs='+', default=[20, 10], help='start steps (of --steps) to invert to')
    a = ap.parse_args()
    pipe, oracle, ph = load_pipeline('chest'), load_oracle('chest'), ChestPhantom(64, seed=0)
    pop = ph.sample(400, seed=2024)
    eff = pop.attrs.effusion.to_numpy()
    groups = [('add', pop[np.flatnonzero(eff == 0)[:a.n]], 1), ('remove', pop[np.flatnonzero(eff == 1)[:a.n]], 0)]
    for start in a.starts:
        for name, b, target in groups:
            t = time.time()
            ed = inversion_editor(pipe, lambda v, b=b: ph.captions(b.attrs.assign(**v)), a.steps, start_step=start, guidance_scale=5.0)
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')  # the [0, 1]-range and hold hints do not apply here
                r = counterfactual_report(ed, ph, b, oracle.predict, edit_checks=False, effusion=target)
            print(f"start_step={start} of {a.steps}, {name} an effusion ({len(b)} patients): effectiveness {r.effectiveness:.3f}, "
                  f"mae_outside {r.mae_outside:.3f}, leakage_max {r.leakage_max:.3f} ({r.leakage_worst}), age leakage {r.leakage_mae_age:.2f} years "
                  f"[{time.time() - t:.0f} s]", flush=True)


if __name__ == '__main__':
    main()
