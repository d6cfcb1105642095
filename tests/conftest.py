"Fixtures that several test files share: a tiny Stable-Diffusion-style pipeline and a small multiple-sclerosis trial (module-scoped: built once per file that asks), and a float64 default-dtype session (per test)."
import pytest, torch
from medcf.phantoms import MSTrial
from medcf.sde import trial_tensors
from tiny_sd import tiny_pipeline


@pytest.fixture(scope='module')
def pipe():
    "test_diffusion*'s model: tiny_sd.tiny_pipeline()."
    return tiny_pipeline()


@pytest.fixture(scope='module')
def small():
    "24 simulated trial patients (seed 1 of MSTrial(seed=0)) and their tensors: test_sde*'s data."
    tr = MSTrial(seed=0).simulate(24, seed=1)
    return tr, trial_tensors(tr)


@pytest.fixture
def float64_session():
    "torch's default dtype float64 for one test, restored whatever happens (the default-dtype tests of test_oracles, test_phantom_rules, test_sde_rules)."
    was = torch.get_default_dtype(); torch.set_default_dtype(torch.float64)
    try: yield
    finally: torch.set_default_dtype(was)
