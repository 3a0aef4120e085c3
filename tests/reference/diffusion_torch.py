"""PyTorch reference of DiT's Gaussian diffusion training loss (facebookresearch/DiT
diffusion/gaussian_diffusion.py and diffusion_utils.py, loss type MSE, learned-range
variance, epsilon prediction), used by tests/test_dit.c.

usage: diffusion_torch.py loss MODEL.safetensors BATCH.safetensors OUT.safetensors [steps] [schedule] [fp32|bf16]
  BATCH: x0 (N,C,H,W), t (N) int64, y (N) int64, noise (N,C,H,W)
  OUT:   xt, loss, mse, vb (N each), grad.<name> for every trainable parameter (gradient of
         the batch-mean loss), and the schedule arrays sched.<name> (float64)
"""
import math
import sys

import numpy as np
import torch as th

import dit_torch
import st


def mean_flat(tensor):
    return tensor.mean(dim=list(range(1, len(tensor.shape))))


def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + th.exp(logvar1 - logvar2) + ((mean1 - mean2) ** 2) * th.exp(-logvar2))


def approx_standard_normal_cdf(x):
    return 0.5 * (1.0 + th.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * th.pow(x, 3))))


def discretized_gaussian_log_likelihood(x, *, means, log_scales):
    centered_x = x - means
    inv_stdv = th.exp(-log_scales)
    plus_in = inv_stdv * (centered_x + 1.0 / 255.0)
    cdf_plus = approx_standard_normal_cdf(plus_in)
    min_in = inv_stdv * (centered_x - 1.0 / 255.0)
    cdf_min = approx_standard_normal_cdf(min_in)
    log_cdf_plus = th.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = th.log((1.0 - cdf_min).clamp(min=1e-12))
    cdf_delta = cdf_plus - cdf_min
    return th.where(x < -0.999, log_cdf_plus,
                    th.where(x > 0.999, log_one_minus_cdf_min, th.log(cdf_delta.clamp(min=1e-12))))


def betas_for(schedule, steps):
    if schedule == "linear":
        scale = 1000 / steps
        return np.linspace(scale * 0.0001, scale * 0.02, steps, dtype=np.float64)
    f = lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2
    return np.array([min(1 - f((i + 1) / steps) / f(i / steps), 0.999) for i in range(steps)])


class Diffusion:
    def __init__(self, betas):
        self.betas = betas = np.array(betas, dtype=np.float64)
        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas, axis=0)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_log_variance_clipped = np.log(np.append(self.posterior_variance[1], self.posterior_variance[1:]))
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)

    @staticmethod
    def ext(arr, t, shape):
        res = th.from_numpy(arr)[t].float()
        while len(res.shape) < len(shape):
            res = res[..., None]
        return res + th.zeros(shape)

    def q_sample(self, x0, t, noise):
        return self.ext(self.sqrt_alphas_cumprod, t, x0.shape) * x0 + \
            self.ext(self.sqrt_one_minus_alphas_cumprod, t, x0.shape) * noise

    def q_posterior(self, x0, xt, t):
        mean = self.ext(self.posterior_mean_coef1, t, xt.shape) * x0 + self.ext(self.posterior_mean_coef2, t, xt.shape) * xt
        return mean, self.ext(self.posterior_log_variance_clipped, t, xt.shape)

    def p_mean_variance(self, out, x, t):
        C = x.shape[1]
        eps, var_values = th.split(out, C, dim=1)
        min_log = self.ext(self.posterior_log_variance_clipped, t, x.shape)
        max_log = self.ext(np.log(self.betas), t, x.shape)
        frac = (var_values + 1) / 2
        log_variance = frac * max_log + (1 - frac) * min_log
        pred_x0 = self.ext(self.sqrt_recip_alphas_cumprod, t, x.shape) * x - \
            self.ext(self.sqrt_recipm1_alphas_cumprod, t, x.shape) * eps
        mean, _ = self.q_posterior(pred_x0, x, t)
        return mean, log_variance

    def vb_terms_bpd(self, out, x0, xt, t):
        true_mean, true_log_var = self.q_posterior(x0, xt, t)
        mean, log_var = self.p_mean_variance(out, xt, t)
        kl = mean_flat(normal_kl(true_mean, true_log_var, mean, log_var)) / np.log(2.0)
        nll = -discretized_gaussian_log_likelihood(x0, means=mean, log_scales=0.5 * log_var)
        nll = mean_flat(nll) / np.log(2.0)
        return th.where((t == 0), nll, kl)

    def training_losses(self, model, x0, t, y, noise, learn_sigma):
        xt = self.q_sample(x0, t, noise)
        out = model(xt, t, y)
        terms = {"xt": xt}
        if learn_sigma:
            C = xt.shape[1]
            eps, var_values = th.split(out, C, dim=1)
            frozen = th.cat([eps.detach(), var_values], dim=1)
            terms["vb"] = self.vb_terms_bpd(frozen, x0, xt, t)
        else:
            eps = out
            terms["vb"] = th.zeros(x0.shape[0])
        terms["mse"] = mean_flat((noise - eps) ** 2)
        terms["loss"] = terms["mse"] + terms["vb"]
        return terms


def main():
    th.set_num_threads(1)
    if len(sys.argv) < 5 or sys.argv[1] != "loss":
        raise SystemExit(__doc__)
    steps = int(sys.argv[5]) if len(sys.argv) > 5 else 1000
    schedule = sys.argv[6] if len(sys.argv) > 6 else "linear"
    # bf16: the forward and the loss under CPU autocast, as a PyTorch user writes mixed
    # precision (parameters, their gradients and the optimiser stay fp32)
    bf16 = len(sys.argv) > 7 and sys.argv[7] == "bf16"
    model, meta = dit_torch.model_from_file(sys.argv[2])
    learn_sigma = meta["learn_sigma"] in ("True", "true", "1")
    b, _ = st.load(sys.argv[3])
    d = Diffusion(betas_for(schedule, steps))
    with th.autocast("cpu", dtype=th.bfloat16, enabled=bf16):
        terms = d.training_losses(model, th.from_numpy(b["x0"]), th.from_numpy(b["t"]), th.from_numpy(b["y"]),
                                  th.from_numpy(b["noise"]), learn_sigma)
        loss = terms["loss"].float().mean()
    loss.backward()
    out = {k: v.detach().float().numpy() for k, v in terms.items()}
    for name, p in model.named_parameters():
        if p.requires_grad:
            out["grad." + name] = p.grad.numpy()
    for name in ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_recip_alphas_cumprod", "posterior_variance",
                 "posterior_log_variance_clipped", "posterior_mean_coef1", "posterior_mean_coef2"):
        out["sched." + name] = getattr(d, name)
    st.save(sys.argv[4], out)


if __name__ == "__main__":
    main()
