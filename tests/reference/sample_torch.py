"""PyTorch reference of DiT's sampling (improved-DDPM gaussian_diffusion.py p_sample /
ddim_sample, respace.py SpacedDiffusion, DiT's forward_with_cfg and sample.py), used by
tests/test_sample.c.

usage: sample_torch.py sample MODEL.safetensors IN.safetensors OUT.safetensors SAMPLER SPEC ETA CFG CFG_CHANNELS CLIP
  IN: x_T (N,C,H,W), noise (S,N,C,H,W), y (N) int64
  OUT: samples (N,C,H,W), betas and timestep_map of the respaced diffusion (float64)
"""
import sys

import numpy as np
import torch as th

import diffusion_torch
import dit_torch
import st


def space_timesteps(num_timesteps, section_counts):  # respace.py
    if isinstance(section_counts, str):
        if section_counts.startswith("ddim"):
            desired_count = int(section_counts[len("ddim"):])
            for i in range(1, num_timesteps):
                if len(range(0, num_timesteps, i)) == desired_count:
                    return set(range(0, num_timesteps, i))
            raise ValueError(section_counts)
        section_counts = [int(x) for x in section_counts.split(",")]
    size_per = num_timesteps // len(section_counts)
    extra = num_timesteps % len(section_counts)
    start_idx = 0
    all_steps = []
    for i, section_count in enumerate(section_counts):
        size = size_per + (1 if i < extra else 0)
        frac_stride = 1 if section_count <= 1 else (size - 1) / (section_count - 1)
        cur_idx = 0.0
        taken_steps = []
        for _ in range(section_count):
            taken_steps.append(start_idx + round(cur_idx))
            cur_idx += frac_stride
        all_steps += taken_steps
        start_idx += size
    return set(all_steps)


def main():
    th.set_num_threads(1)
    if len(sys.argv) != 11 or sys.argv[1] != "sample":
        raise SystemExit(__doc__)
    model, meta = dit_torch.model_from_file(sys.argv[2])
    learn_sigma = meta["learn_sigma"] in ("True", "true", "1")
    num_classes = int(meta["num_classes"])
    inp, _ = st.load(sys.argv[3])
    sampler, spec, eta, cfg, cfg_ch, clip = sys.argv[5], sys.argv[6], float(sys.argv[7]), float(sys.argv[8]), int(sys.argv[9]), sys.argv[10] == "1"
    base = diffusion_torch.Diffusion(diffusion_torch.betas_for("linear", 1000))
    use = space_timesteps(1000, spec) if spec else set(range(1000))
    new_betas, tmap, last = [], [], 1.0
    for i, ac in enumerate(base.alphas_cumprod):
        if i in use:
            new_betas.append(1 - ac / last)
            last = ac
            tmap.append(i)
    d = diffusion_torch.Diffusion(np.array(new_betas))
    tmap_t = th.tensor(tmap)
    C = inp["x_T"].shape[1]
    k = cfg_ch if cfg_ch else C

    def model_fn(x, t, y):  # _WrappedModel + forward_with_cfg
        ts = tmap_t[t]
        if cfg == 1.0:
            return model(x, ts, y)
        half = x[: len(x) // 2]
        combined = th.cat([half, half], dim=0)
        out = model(combined, ts, y)
        eps, rest = out[:, :k], out[:, k:]
        cond_eps, uncond_eps = th.split(eps, len(eps) // 2, dim=0)
        half_eps = uncond_eps + cfg * (cond_eps - uncond_eps)
        return th.cat([th.cat([half_eps, half_eps], dim=0), rest], dim=1)

    def p_mean_variance(x, t, y):
        out = model_fn(x, t, y)
        if learn_sigma:
            eps, var_values = th.split(out, C, dim=1)
            min_log = d.ext(d.posterior_log_variance_clipped, t, x.shape)
            max_log = d.ext(np.log(d.betas), t, x.shape)
            frac = (var_values + 1) / 2
            log_var = frac * max_log + (1 - frac) * min_log
        else:
            eps = out
            log_var = d.ext(np.log(np.append(d.posterior_variance[1], d.betas[1:])), t, x.shape)
        px0 = d.ext(d.sqrt_recip_alphas_cumprod, t, x.shape) * x - d.ext(d.sqrt_recipm1_alphas_cumprod, t, x.shape) * eps
        if clip:
            px0 = px0.clamp(-1, 1)
        mean, _ = d.q_posterior(px0, x, t)
        return mean, log_var, px0

    y = th.from_numpy(inp["y"])
    x = th.from_numpy(inp["x_T"])
    noise_all = th.from_numpy(inp["noise"])
    if cfg != 1.0:  # sample.py: z = cat([z, z]); y = cat([y, null])
        x = th.cat([x, x], 0)
        y = th.cat([y, th.full_like(y, num_classes)], 0)
    S = len(tmap)
    with th.no_grad():
        for step, i in enumerate(reversed(range(S))):
            t = th.tensor([i] * x.shape[0])
            noise = noise_all[step]
            if cfg != 1.0:
                noise = th.cat([noise, noise], 0)
            mean, log_var, px0 = p_mean_variance(x, t, y)
            nonzero = (t != 0).float().view(-1, 1, 1, 1)
            if sampler == "ddim":
                eps = (d.ext(d.sqrt_recip_alphas_cumprod, t, x.shape) * x - px0) / d.ext(d.sqrt_recipm1_alphas_cumprod, t, x.shape)
                ab = d.ext(d.alphas_cumprod, t, x.shape)
                abp = d.ext(d.alphas_cumprod_prev, t, x.shape)
                sigma = eta * th.sqrt((1 - abp) / (1 - ab)) * th.sqrt(1 - ab / abp)
                mean_pred = px0 * th.sqrt(abp) + th.sqrt(1 - abp - sigma ** 2) * eps
                x = mean_pred + nonzero * sigma * noise
            else:
                x = mean + nonzero * th.exp(0.5 * log_var) * noise
    samples = x[: len(x) // 2] if cfg != 1.0 else x
    st.save(sys.argv[4], {"samples": samples.numpy(), "betas": np.array(new_betas, dtype=np.float64),
                          "timestep_map": np.array(tmap, dtype=np.float64)})


if __name__ == "__main__":
    main()
