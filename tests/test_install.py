"""A plain (non-editable) install, `pip install .` or `pip install git+URL`, carries data_samples/ with it, so the shipped
checkpoints load with no set-up beyond the install (setup.py's data_files; medcf.phantoms.data_samples_root)."""
import os, shutil, subprocess, sys, zipfile
from pathlib import Path
import pytest
from medcf.phantoms import data_samples_root, data_path

REPO = Path(__file__).resolve().parent.parent
SHARE = 'share/medcf/data_samples/'


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    "A wheel built from a copy of the project's packaging files, the package and data_samples/ (nothing written into the repo)."
    tmp = tmp_path_factory.mktemp('wheel'); src = tmp / 'src'; src.mkdir()
    for f in ('setup.py', 'pyproject.toml', 'settings.ini', 'README.md', 'MANIFEST.in'): shutil.copy(REPO / f, src / f)  # what pip install . reads
    for d in ('medcf', 'data_samples'): shutil.copytree(REPO / d, src / d, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', str(src), '-w', str(tmp)], check=True)
    return next(tmp.glob('medcf-*.whl'))


def _data_files(folder: Path) -> set:
    return {p.relative_to(folder).as_posix() for p in folder.rglob('*') if p.is_file() and '__pycache__' not in p.parts}


def test_wheel_carries_data_samples(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.split(SHARE, 1)[1] for n in names if SHARE in n}
    assert shipped == _data_files(REPO / 'data_samples')  # every file, nothing else
    assert {'models/chest/model_card.json', 'oracles/chest/attributes.safetensors'} <= shipped


def test_plain_install_loads_the_zoo(wheel, tmp_path):
    "Installed into a fresh virtual environment (the course's other packages seen through this environment's site-packages), run from elsewhere."
    venv = tmp_path / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    py = venv / 'bin' / 'python'
    env = {k: v for k, v in os.environ.items() if k not in ('MEDCF_DATA_SAMPLES', 'PYTHONPATH')}  # PYTHONPATH out for pip too: a clone on it would pass for medcf already installed
    subprocess.run([str(py), '-m', 'pip', 'install', '-q', '--no-deps', '--disable-pip-version-check', str(wheel)], check=True, env=env)
    # The other packages as this test sees them: --system-site-packages would show the base interpreter's instead, which under
    # a virtual environment (the usual way to run the suite) hold no torch. Listed after the venv's own, and as plain paths, so
    # their .pth files (this environment's editable medcf) are not run: medcf must come from the wheel (written after pip ran, so pip
    # does not take this environment's medcf for the one to install).
    purelib = Path(subprocess.run([str(py), '-c', "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True, capture_output=True, text=True).stdout.strip())
    (purelib / 'parent_site_packages.pth').write_text(''.join(p + '\n' for p in sys.path if Path(p).name in ('site-packages', 'dist-packages')), encoding='utf-8')
    code = ("import medcf.phantoms as P; from medcf.diffusion import load_pipeline; "
            "print(P.__file__); print(P.data_samples_root()); load_pipeline('chest')")
    out = subprocess.run([str(py), '-c', code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    module, root = out.stdout.split()
    assert Path(module).is_relative_to(venv) and Path(root) == (venv / 'share' / 'medcf' / 'data_samples').resolve()
    gen = subprocess.run([str(venv / 'bin' / 'medcf'), 'generate', '--model', 'chest', '--prompt', 'Chest X-ray', '--n', '1',
                          '--steps', '2', '--out', str(tmp_path / 'g.png')], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert gen.returncode == 0 and (tmp_path / 'g.png').stat().st_size > 0, gen.stderr


def test_data_samples_root_order(monkeypatch, tmp_path):
    monkeypatch.delenv('MEDCF_DATA_SAMPLES', raising=False)
    assert data_samples_root() == REPO / 'data_samples'  # a clone (editable install): the folder beside the package
    assert data_path('models') == REPO / 'data_samples' / 'models'  # data_path names a missing file and where it looked (session 42)
    with pytest.raises(FileNotFoundError, match=r"no_such_file\.npz does not exist; data_samples/ is looked up at .*MEDCF_DATA_SAMPLES"):
        data_path('medmnist', 'no_such_file.npz')
    monkeypatch.setenv('MEDCF_DATA_SAMPLES', str(tmp_path))  # the environment variable wins
    assert data_samples_root() == tmp_path
    with pytest.raises(FileNotFoundError, match='MEDCF_DATA_SAMPLES'): data_path('models')
    from medcf.diffusion import load_pipeline
    with pytest.raises(FileNotFoundError, match=f"not in data_samples/models .*looked up at {tmp_path}"): load_pipeline('chest')


def test_checkpoints_survive_a_windows_checkout():
    "Git for Windows checks text files out with CRLF line ends by default (core.autocrlf=true); the zoo's model cards hash their config "
    "JSON byte for byte, so such a checkout failed load_pipeline('chest') as a corrupt checkpoint. .gitattributes keeps data_samples/ "
    "byte-exact: each card-listed file, as that checkout would write it, still has the card's sha256."
    import hashlib, json
    if shutil.which('git') is None or subprocess.run(['git', 'rev-parse', '--is-inside-work-tree'], cwd=REPO, capture_output=True).returncode:
        pytest.skip('not a git work tree (an installed copy): nothing is checked out')
    cards = sorted((REPO / 'data_samples' / 'models').glob('*/model_card.json'))
    assert len(cards) >= 2
    for card in cards:
        for rel, want in json.loads(card.read_text(encoding='utf-8'))['files'].items():
            path = (card.parent / rel).relative_to(REPO).as_posix()
            out = subprocess.run(['git', '-c', 'core.autocrlf=true', 'cat-file', '--filters', f'HEAD:{path}'], cwd=REPO, capture_output=True, check=True).stdout
            assert hashlib.sha256(out).hexdigest() == want, f'{path} changes in a CRLF checkout'
