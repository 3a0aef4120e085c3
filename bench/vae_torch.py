"""The diffusers side of `sadm bench vae`: AutoencoderKL with the SD VAE's config
(sd-vae-ft-ema/-mse: blocks 128/256/512/512, 2 layers, 32 groups), random weights, float32,
encode (posterior mean) and decode of IMAGES images of SIZE x SIZE, one at a time as the
libsadm side does; prints one JSON line with images/s of each.
  usage: vae_torch.py SIZE IMAGES THREADS
"""
import json
import sys
import time

import safetensors.torch  # noqa: F401  (diffusers 0.27 uses it without importing it)
import torch
from diffusers import AutoencoderKL

size, images, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
nb = 4
vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                    down_block_types=("DownEncoderBlock2D",) * nb, up_block_types=("UpDecoderBlock2D",) * nb).eval()
x = torch.rand(1, 3, size, size) * 2 - 1
z = torch.randn(1, 4, size // 8, size // 8)
with torch.no_grad():
    vae.encode(x).latent_dist.mean  # warm-up
    t0 = time.perf_counter()
    for _ in range(images):
        vae.encode(x).latent_dist.mean
    enc = images / (time.perf_counter() - t0)
    vae.decode(z).sample
    t0 = time.perf_counter()
    for _ in range(images):
        vae.decode(z).sample
    dec = images / (time.perf_counter() - t0)
print(json.dumps({"encode_images_per_s": enc, "decode_images_per_s": dec, "torch": torch.__version__}))
