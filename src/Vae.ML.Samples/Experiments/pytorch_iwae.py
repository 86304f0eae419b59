#!/usr/bin/python3
"""The importance-weighted log-likelihood (IWAE bound, Burda et al. 2015) of a Vae.ML safetensors export, computed
independently in PyTorch, for cross-checking VaeTransformer.LogLikelihood on the same weights.

Usage: pytorch_iwae.py WEIGHTS.safetensors INPUTS.f32 [--samples K] [--seed S] [--batch B]
INPUTS.f32 holds rows of little-endian float32 features. Supports the MLP export (fc1, fc21, fc22, fc3, fc4, the report's
state_dict names) with the Bernoulli likelihood, and the Gaussian likelihood (decoder_log_var, standardization.mean/std
present). Prints JSON: mean log p(x) per row in nats (negative for Bernoulli), the rows, and torch's version.
log w = log p(x|z) + log N(z; 0, I) - log N(z; mu, sigma^2); estimate = logsumexp_k(log w) - log K, in float64.
"""
import argparse, json, math, struct
import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("weights"); p.add_argument("inputs")
p.add_argument("--samples", type=int, default=200); p.add_argument("--seed", type=int, default=0)
p.add_argument("--batch", type=int, default=100)
a = p.parse_args()

def load_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n)); data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__": continue
        begin, end = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32).reshape(info["shape"])
    return out

w = load_safetensors(a.weights)
width = w["fc1.weight"].shape[1]
X = torch.frombuffer(bytearray(open(a.inputs, "rb").read()), dtype=torch.float32).reshape(-1, width)
gaussian = "decoder_log_var" in w
LOG2PI = math.log(2 * math.pi)

def encode(x):
    h = F.relu(F.linear(x, w["fc1.weight"], w["fc1.bias"]))
    return F.linear(h, w["fc21.weight"], w["fc21.bias"]), F.linear(h, w["fc22.weight"], w["fc22.bias"])

def decode(z):
    h = F.relu(F.linear(z, w["fc3.weight"], w["fc3.bias"]))
    return F.linear(h, w["fc4.weight"], w["fc4.bias"])

def log_px_given_z(out, x):
    if not gaussian:
        return -F.binary_cross_entropy_with_logits(out, x, reduction="none").sum(-1)
    mean, std = w["standardization.mean"], w["standardization.std"]
    xs = (x - mean) / std   # the decoder models standardized features; the density is of the raw row
    lv = w["decoder_log_var"].clamp_min(math.log(1e-3))
    return -0.5 * (LOG2PI + lv + (xs - out) ** 2 / lv.exp()).sum(-1) - torch.log(std).sum()

torch.manual_seed(a.seed)
torch.set_num_threads(2)
total = 0.0
with torch.no_grad():
    for i in range(0, X.shape[0], a.batch):
        x = X[i:i + a.batch]
        xin = (x - w["standardization.mean"]) / w["standardization.std"] if gaussian else x
        mu, lv = encode(xin)
        std = (0.5 * lv).exp()
        eps = torch.randn(a.samples, *mu.shape)
        z = mu + eps * std
        logw = (log_px_given_z(decode(z), x.expand(a.samples, -1, -1))
                - 0.5 * (z ** 2 + LOG2PI).sum(-1) + 0.5 * (eps ** 2 + lv + LOG2PI).sum(-1))
        total += (torch.logsumexp(logw.double(), 0) - math.log(a.samples)).sum().item()
print(json.dumps({"log_likelihood": total / X.shape[0], "rows": X.shape[0], "gaussian": gaussian, "torch": torch.__version__}))
