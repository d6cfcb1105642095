"Tiny untrained Stable-Diffusion-style pipelines and images that the diffusion tests share (not a test module: pytest collects only test_*.py)."
import torch
from medcf import diffusion as D


def tiny_pipeline():
    "A 32-px, one-channel pipeline with a small VAE and UNet, seeded: every diffusion test's model."
    return D.build_pipeline(channels=1, size=32, vae_blocks=(8, 8, 16), unet_blocks=(16, 32), seed=0)


def imgs(n=2, c=1, s=32, seed=0):
    "n random c x s x s images in [-1, 1], seeded."
    return torch.rand(n, c, s, s, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def fresh_unet(pipe, scheduler=None):
    "`pipe`'s VAE, text encoder and tokenizer with a new seeded UNet (and `scheduler`, else pipe's): a model to fine-tune from scratch."
    torch.manual_seed(0)
    return D.assemble_pipeline(pipe.vae, D.build_unet(8, 4, (16, 32)), scheduler or pipe.scheduler, pipe.text_encoder, pipe.tokenizer)
