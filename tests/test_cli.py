"The medcf console script: tour output, README check, argument errors."
import subprocess, sys
from pathlib import Path
import pytest
from medcf.cli import main, readme_text, tour

def test_tour_writes_a_seeded_report(tmp_path):
    assert main(['tour', '--out', str(tmp_path / 'a'), '--seed', '1']) == 0
    html = (tmp_path / 'a' / 'index.html').read_text()
    pngs = sorted(p.name for p in (tmp_path / 'a').glob('*.png'))
    assert len(pngs) >= 5 and all(f'src="{p}"' in html for p in pngs)
    b = tour(tmp_path / 'b', seed=1)  # same seed, same figures
    for p in pngs: assert (tmp_path / 'a' / p).read_bytes() == (b.parent / p).read_bytes(), p

def test_unknown_command_and_missing_out():
    with pytest.raises(SystemExit): main(['nonsense'])
    with pytest.raises(SystemExit): main(['tour'])

def test_readme_in_step():
    root = Path(__file__).resolve().parent.parent
    assert (root / 'README.md').read_text() == readme_text(root / 'nbs' / 'index.ipynb'), "run `medcf readme`"

def test_console_script_installed():
    r = subprocess.run(['medcf', '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and 'tour' in r.stdout
