"""Run the tests against the oldest releases settings.ini allows (not a test: pytest does not collect it; CI installs the newest).

    python tests/lower_bounds.py --venv /tmp/lowest                  # a fresh venv with every floor, then pytest -q tests there
    python tests/lower_bounds.py --venv /tmp/lowest --notebooks      # nbdev_test (fast mode) as well
    python tests/lower_bounds.py --venv /tmp/lowest --pin torch==2.2.2 --dry-run   # another release than a floor; print the plan only
    python tests/lower_bounds.py --venv /tmp/py310 --python python3.10           # settings.ini's min_python as well

Each `name>=X` of settings.ini's `requirements` is installed as `name==X` (its floor), the other requirements and the dev ones
as settings.ini names them, medcf itself as an editable install of this clone (no dependencies of its own), all in one pip
call, so pip says at once when two floors cannot live together. It prints the versions it got and each command's result, and
exits with the tests' status. (torch releases before 2.3 were built against numpy 1 and fail on numpy 2: numpy's floor is a
1.x release, so a `--pin numpy==2...` beside torch 2.2 is yours to avoid.)
"""
import argparse, configparser, os, re, subprocess, sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def floors(settings: Path = REPO / 'settings.ini') -> tuple[list[str], list[str]]:
    "settings.ini's requirements with every `>=X` floor made `==X` (an upper bound after it is dropped), and its dev requirements."
    cfg = configparser.ConfigParser(); cfg.read(settings, encoding='utf-8')
    req, dev = cfg['DEFAULT']['requirements'].split(), cfg['DEFAULT'].get('dev_requirements', '').split()
    pinned = [re.sub(r'>=([^,]+)(,.*)?$', r'==\1', r) for r in req]
    return pinned, dev


def with_pins(reqs: list[str], pins: list[str]) -> list[str]:
    "`reqs` with each `--pin name==V` replacing that package's requirement (a pin for a package not in `reqs` is an error)."
    name = lambda r: re.split(r'[<>=!~ ;\[]', r, maxsplit=1)[0].lower()
    out = list(reqs)
    for p in pins:
        hits = [i for i, r in enumerate(out) if name(r) == name(p)]
        if not hits: raise SystemExit(f"--pin {p}: {name(p)!r} is not among settings.ini's requirements ({', '.join(sorted({name(r) for r in reqs}))})")
        for i in hits: out[i] = p
    return out


def plan(pins: list[str] = ()) -> list[str]:
    "What to install: settings.ini's floors, `pins` in place of theirs, then the dev requirements."
    req, dev = floors()
    return with_pins(req, list(pins)) + dev


def run(cmd: list[str], **kw) -> int:
    print('$', ' '.join(cmd), flush=True)
    return subprocess.run(cmd, **kw).returncode


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--venv', required=True, help='the folder for the virtual environment (made, or reused if it is one)')
    ap.add_argument('--pin', action='append', default=[], help='name==V instead of that package\'s floor (repeatable)')
    ap.add_argument('--python', default=sys.executable, help="the interpreter the venv is made from (default: this one), e.g. settings.ini's min_python")
    ap.add_argument('--notebooks', action='store_true', help='run nbdev_test (fast mode) too')
    ap.add_argument('--dry-run', action='store_true', help='print what would be installed and run, and stop')
    a = ap.parse_args()
    reqs = plan(a.pin)
    venv = Path(a.venv).expanduser().resolve(); py = venv / 'bin' / 'python'
    print('installing:', ' '.join(reqs), flush=True)
    if a.dry_run: return 0
    if not py.exists() and run([a.python, '-m', 'venv', str(venv)]): return 1
    pip = [str(py), '-m', 'pip', 'install', '-q', '--disable-pip-version-check']
    if run(pip + reqs) or run(pip + ['--no-deps', '-e', str(REPO)]): return 1
    subprocess.run([str(py), '-c', "import importlib.metadata as m, platform; print('got: Python', platform.python_version() + ',', ', '.join(f'{p} {m.version(p)}' for p in "
                    "('torch', 'diffusers', 'transformers', 'numpy', 'pandas', 'torchsde', 'huggingface_hub', 'tokenizers', 'matplotlib', "
                    "'pillow', 'safetensors', 'tqdm', 'ipywidgets')))"])
    env = {**os.environ, 'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS', '2')}
    bindir = str(venv / 'bin'); env['PATH'] = bindir + os.pathsep + env.get('PATH', '')
    rc = run([str(py), '-m', 'pytest', '-q', 'tests', '-p', 'no:cacheprovider'], cwd=REPO, env=env)
    if a.notebooks: rc = run([str(venv / 'bin' / 'nbdev_test'), '--n_workers', '1', '--timing'], cwd=REPO, env=env) or rc
    print('lower bounds:', 'passed' if rc == 0 else f'failed (exit {rc})', flush=True)
    return rc


if __name__ == '__main__':
    sys.exit(main())
