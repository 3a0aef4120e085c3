"""diffusers' own AutoencoderKL as the reference of libsadm's VAE (run by the Python of the
diffusers venv, tools/setup_diffusers_venv.sh: diffusers 0.27.2 on Debian's torch).

  vae_ref.py make CONFIG_JSON OUT_DIR SEED [old]
      a random AutoencoderKL of that config saved as diffusers saves it (config.json +
      diffusion_pytorch_model.safetensors); with "old", the attention tensors under the
      names the published sd-vae-ft-* files carry (query/key/value/proj_attn; the query
      and proj_attn weights as 1x1 convolutions) and a single-file copy OUT_DIR.safetensors
      with config.json in its __metadata__ "config"
  vae_ref.py encode DIR X.safetensors OUT.safetensors    x -> mean, logvar (posterior)
  vae_ref.py decode DIR Z.safetensors OUT.safetensors    z -> x
"""
import json
import os
import sys

import numpy as np
import safetensors.torch  # noqa: F401  (diffusers 0.27 calls safetensors.torch without importing it)
import torch
from diffusers import AutoencoderKL
from diffusers.models.autoencoders.vae import Decoder, DiagonalGaussianDistribution, Encoder

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402

torch.set_num_threads(1)

OLD = {"to_q.": "query.", "to_k.": "key.", "to_v.": "value.", "to_out.0.": "proj_attn."}


# options of later diffusers (mid_block_add_attention, use_quant_conv, use_post_quant_conv)
# that 0.27.2's AutoencoderKL does not take: its own Encoder and Decoder do take the first,
# and the quantisation convolutions are then composed as AutoencoderKL composes them
LATER = ("mid_block_add_attention", "use_quant_conv", "use_post_quant_conv")


class Composed(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = dict(cfg)
        nb = len(cfg["block_out_channels"])
        common = dict(block_out_channels=tuple(cfg["block_out_channels"]), layers_per_block=cfg.get("layers_per_block", 1),
                      norm_num_groups=cfg.get("norm_num_groups", 32), act_fn="silu",
                      mid_block_add_attention=cfg.get("mid_block_add_attention", True))
        L = cfg.get("latent_channels", 4)
        self.encoder = Encoder(in_channels=cfg.get("in_channels", 3), out_channels=L,
                               down_block_types=("DownEncoderBlock2D",) * nb, double_z=True, **common)
        self.decoder = Decoder(in_channels=L, out_channels=cfg.get("out_channels", 3),
                               up_block_types=("UpDecoderBlock2D",) * nb, **common)
        self.quant_conv = torch.nn.Conv2d(2 * L, 2 * L, 1) if cfg.get("use_quant_conv", True) else None
        self.post_quant_conv = torch.nn.Conv2d(L, L, 1) if cfg.get("use_post_quant_conv", True) else None

    def encode(self, x):
        h = self.encoder(x)
        if self.quant_conv is not None:
            h = self.quant_conv(h)
        return DiagonalGaussianDistribution(h)

    def decode(self, z):
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        return self.decoder(z)

    def save_pretrained(self, out_dir, safe_serialization=True):
        os.makedirs(out_dir, exist_ok=True)
        cfg = dict(self.cfg, _class_name="AutoencoderKL")
        json.dump(cfg, open(os.path.join(out_dir, "config.json"), "w"), indent=2)
        sd = {k: v.contiguous() for k, v in self.state_dict().items()}
        safetensors.torch.save_file(sd, os.path.join(out_dir, "diffusion_pytorch_model.safetensors"))


def build(cfg):
    if any(k in cfg for k in LATER):
        return Composed(cfg)
    return AutoencoderKL(**cfg)


def make(config_path, out_dir, seed, old):
    cfg = json.load(open(config_path))
    torch.manual_seed(seed)
    vae = build(cfg)
    # default init leaves GroupNorm at weight 1 / bias 0: make the affine part visible
    with torch.no_grad():
        for name, p in vae.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.uniform_(0.5, 1.5)
            elif "norm" in name and name.endswith("bias"):
                p.uniform_(-0.5, 0.5)
    vae.save_pretrained(out_dir, safe_serialization=True)
    if not old:
        return
    path = os.path.join(out_dir, "diffusion_pytorch_model.safetensors")
    tensors, _ = st.load(path)
    renamed = {}
    for name, a in tensors.items():
        if ".attentions." in name:
            for new, was in OLD.items():
                if new in name:
                    name = name.replace(new, was)
                    if a.ndim == 2 and was in ("query.", "proj_attn."):
                        a = a.reshape(a.shape[0], a.shape[1], 1, 1)
        renamed[name] = a
    st.save(path, renamed)
    st.save(out_dir.rstrip("/") + ".safetensors", renamed, {"config": open(os.path.join(out_dir, "config.json")).read()})


def load(dir_):
    cfg = json.load(open(os.path.join(dir_, "config.json")))
    if any(k in cfg for k in LATER):
        vae = Composed({k: v for k, v in cfg.items() if k != "_class_name"})
        vae.load_state_dict(safetensors.torch.load_file(os.path.join(dir_, "diffusion_pytorch_model.safetensors")))
    else:
        vae = AutoencoderKL.from_pretrained(dir_)
    vae.eval()
    return vae


def main():
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2], sys.argv[3], int(sys.argv[4]), len(sys.argv) > 5 and sys.argv[5] == "old")
    elif cmd == "encode":
        vae = load(sys.argv[2])
        x = torch.from_numpy(st.load(sys.argv[3])[0]["x"])
        with torch.no_grad():
            post = vae.encode(x)
            post = getattr(post, "latent_dist", post)
        st.save(sys.argv[4], {"mean": post.mean.numpy().astype(np.float32),
                              "logvar": post.logvar.numpy().astype(np.float32)})
    elif cmd == "decode":
        vae = load(sys.argv[2])
        z = torch.from_numpy(st.load(sys.argv[3])[0]["z"])
        with torch.no_grad():
            x = vae.decode(z)
            x = getattr(x, "sample", x)
        st.save(sys.argv[4], {"x": x.numpy().astype(np.float32)})
    else:
        sys.exit("vae_ref.py: unknown command " + cmd)


if __name__ == "__main__":
    main()
