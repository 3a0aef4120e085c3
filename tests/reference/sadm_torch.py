"""PyTorch reference of SADM as libsadm defines it (issue text: structure encoder, structural
distances, the denoiser's and the encoder's objectives), written from that definition with
autograd doing every gradient; used by tests/test_sadm.c.

usage:
  sadm_torch.py encoder ENC.safetensors BATCH.safetensors OUT.safetensors
      BATCH: x (N,C,H,W), dz (N,E)   OUT: z, dx and grad.<name> of sum(z * dz)
  sadm_torch.py struct BATCH.safetensors OUT.safetensors DISTANCE TAU
      BATCH: zr, zf (N,E) unit rows, w (N)   OUT: loss, dzr, dzf
  sadm_torch.py sadm DIT.safetensors ENC.safetensors BATCH.safetensors OUT.safetensors LAMBDA DISTANCE WEIGHTING TAU RATIO
      BATCH: x0, t, y, noise as diffusion_torch.py
      WEIGHTING: none, alpha or t<N (w_i = [t_i < N])
      RATIO > 0: adaptive lambda = min(RATIO |g_d| / |g_s|, 1e4) (replaces LAMBDA), g_d and g_s
           the gradients of mean(loss) and of L_struct with respect to the model's eps output
      OUT: loss, mse, vb (N), struct, lambda_eff, grad_share (lambda |g_s| / |g_d|), grad.<name> (DiT, of mean(loss) + lambda
           L_struct, real branch constant), dgrad.<name> (encoder, of L_struct with x̂0 detached)
"""
import sys

import numpy as np
import torch as th
import torch.nn as nn
import torch.nn.functional as F

import diffusion_torch
import dit_torch
import st


class Attention(nn.Module):  # timm's, packed qkv
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q @ k.transpose(-2, -1)) * (C // self.heads) ** -0.5
        x = (attn.softmax(dim=-1) @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU(approximate="tanh")
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, p, cin, dim):
        super().__init__()
        self.proj = nn.Conv2d(cin, dim, p, stride=p)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class StructureEncoder(nn.Module):
    def __init__(self, input_size, patch_size, in_channels, hidden_size, depth, num_heads, mlp_ratio, embed_dim):
        super().__init__()
        self.x_embedder = PatchEmbed(patch_size, in_channels, hidden_size)
        grid = input_size // patch_size
        pos = dit_torch.get_2d_sincos_pos_embed(hidden_size, grid)
        self.pos_embed = nn.Parameter(th.from_numpy(pos).float().unsqueeze(0), requires_grad=False)
        self.blocks = nn.ModuleList([Block(hidden_size, num_heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(hidden_size, eps=1e-6)
        self.head = nn.Linear(hidden_size, embed_dim)

    def forward(self, x):
        x = self.x_embedder(x) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        h = self.head(self.norm(x).mean(dim=1))
        return F.normalize(h, dim=1)


def encoder_from_file(path):
    w, meta = st.load(path)
    e = StructureEncoder(int(meta["input_size"]), int(meta["patch_size"]), int(meta["in_channels"]),
                         int(meta["hidden_size"]), int(meta["depth"]), int(meta["num_heads"]),
                         float(meta["mlp_ratio"]), int(meta["embed_dim"]))
    sd = e.state_dict()
    if set(sd) ^ set(w):
        raise SystemExit("names differ between the file and the PyTorch encoder: %s" % sorted(set(sd) ^ set(w)))
    ref_pos = sd["pos_embed"].numpy()
    if np.abs(ref_pos - w["pos_embed"]).max() > 1e-6:
        raise SystemExit("pos_embed in the file differs from get_2d_sincos_pos_embed")
    e.load_state_dict({k: th.from_numpy(v) for k, v in w.items()})
    return e


def struct_distance(zr, zf, w, distance, tau):
    N = zr.shape[0]
    off = ~th.eye(N, dtype=th.bool)
    Sr, Sf = zr @ zr.T, zf @ zf.T
    if distance == "cosine-mse":
        ww = (w[:, None] * w[None, :])[off]
        if ww.sum() == 0:  # no weighted pair (t<N): no structure term
            return (Sf * 0).sum()
        return (ww * (Sr[off] - Sf[off]) ** 2).sum() / ww.sum()
    if distance == "softmax-kl":
        lr = F.log_softmax((Sr / tau)[off].reshape(N, N - 1), dim=1)
        lf = F.log_softmax((Sf / tau)[off].reshape(N, N - 1), dim=1)
        kl = (lr.exp() * (lr - lf)).sum(dim=1)
        return (w * kl).sum() / w.sum()
    raise SystemExit("unknown distance " + distance)


def cmd_encoder(args):
    e = encoder_from_file(args[0])
    b, _ = st.load(args[1])
    x = th.from_numpy(b["x"]).double().requires_grad_(True)
    e = e.double()
    z = e(x)
    (z * th.from_numpy(b["dz"]).double()).sum().backward()
    out = {"z": z.detach().float().numpy(), "dx": x.grad.float().numpy()}
    for name, p in e.named_parameters():
        if p.requires_grad:
            out["grad." + name] = p.grad.float().numpy()
    st.save(args[2], out)


def cmd_struct(args):
    b, _ = st.load(args[0])
    zr = th.from_numpy(b["zr"]).double().requires_grad_(True)
    zf = th.from_numpy(b["zf"]).double().requires_grad_(True)
    loss = struct_distance(zr, zf, th.from_numpy(b["w"]).double(), args[2], float(args[3]))
    loss.backward()
    st.save(args[1], {"loss": np.array([loss.item()]), "dzr": zr.grad.numpy(), "dzf": zf.grad.numpy()})


def cmd_sadm(args):
    model, meta = dit_torch.model_from_file(args[0])
    learn_sigma = meta["learn_sigma"] in ("True", "true", "1")
    enc = encoder_from_file(args[1])
    b, _ = st.load(args[2])
    lam, distance, weighting, tau, ratio = float(args[4]), args[5], args[6], float(args[7]), float(args[8])
    x0, t, y, noise = (th.from_numpy(b[k]) for k in ("x0", "t", "y", "noise"))
    d = diffusion_torch.Diffusion(diffusion_torch.betas_for("linear", 1000))
    xt = d.q_sample(x0, t, noise)
    out = model(xt, t, y)
    terms = d.training_losses(lambda *a: out, x0, t, y, noise, learn_sigma)
    C = x0.shape[1]
    eps = out[:, :C]
    xhat = d.ext(d.sqrt_recip_alphas_cumprod, t, xt.shape) * xt - d.ext(d.sqrt_recipm1_alphas_cumprod, t, xt.shape) * eps
    if weighting == "alpha":
        w = th.from_numpy(d.alphas_cumprod)[t].float()
    elif weighting.startswith("t<"):
        w = (t < int(weighting[2:])).float()
    else:
        w = th.ones(x0.shape[0])
    # denoiser: real branch constant, encoder parameters not updated by this loss
    for p in enc.parameters():
        p.requires_grad_(False)
    with th.no_grad():
        zr = enc(x0)
    l_struct = struct_distance(zr, enc(xhat), w, distance, tau)
    g_d = th.autograd.grad(terms["loss"].mean(), out, retain_graph=True)[0][:, :C].double().norm().item()
    g_s = th.autograd.grad(l_struct, out, retain_graph=True)[0][:, :C].double().norm().item()
    if ratio > 0:
        lam = min(ratio * g_d / g_s, 1e4) if g_s > 0 else 0.0
    share = lam * g_s / g_d
    (terms["loss"].mean() + lam * l_struct).backward()
    res = {k: terms[k].detach().numpy() for k in ("loss", "mse", "vb")}
    res["struct"] = np.array([l_struct.item()], dtype=np.float64)
    res["lambda_eff"] = np.array([lam], dtype=np.float64)
    res["grad_share"] = np.array([share], dtype=np.float64)
    for name, p in model.named_parameters():
        if p.requires_grad:
            res["grad." + name] = p.grad.numpy()
    # encoder: L_struct with x̂0 detached
    for name, p in enc.named_parameters():
        p.requires_grad_(name != "pos_embed")
    l2 = struct_distance(enc(x0), enc(xhat.detach()), w, distance, tau)
    l2.backward()
    for name, p in enc.named_parameters():
        if p.requires_grad:
            res["dgrad." + name] = p.grad.numpy()
    st.save(args[3], res)


def main():
    th.set_num_threads(1)
    cmds = {"encoder": (cmd_encoder, 3), "struct": (cmd_struct, 4), "sadm": (cmd_sadm, 9)}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds or len(sys.argv) - 2 != cmds[sys.argv[1]][1]:
        raise SystemExit(__doc__)
    cmds[sys.argv[1]][0](sys.argv[2:])


if __name__ == "__main__":
    main()
