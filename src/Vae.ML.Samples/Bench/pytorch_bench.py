#!/usr/bin/python3
"""PyTorch contender for `vae-ml bench`: the original report's model and training step, tensor-fed.

The model, loss and loop are those of shared/reference/seed_vae.py with --loader tensor (784-400-2, BCE on the
sigmoid + KL, Adam 1e-3, batches X[perm[i:i+B]]). The bench starts this script once and drives it over stdin, one
JSON command per line, so that its epochs can be interleaved with Vae.ML's (A, B, A, B ...) while the other side
waits idle:

  {"cmd": "epoch", "rows": N, "batch": B}  -> {"seconds": s, "loss": per-row loss}   (one epoch on the first N rows)
  {"cmd": "peak"}                          -> {"peak_rss_mb": m, "torch": version, "threads": t}
  {"cmd": "quit"}                          -> exits

Usage: pytorch_bench.py DATA.f32 ROWS WIDTH [--threads T] [--seed S] [--arch mlp|conv] [--likelihood bernoulli|gaussian]
DATA.f32 holds ROWS x WIDTH little-endian float32 values in [0, 1], row-major.

--arch and --likelihood give the twins of Vae.ML's other configurations (VaeArchitecture, VaeLikelihood), for the
bench's "other architectures and likelihoods" measure: the convolutional network of
docs/architecture/conv_vs_mlp_pytorch_twin.py (1x28x28 images, BCE on logits), and the Gaussian likelihood (features
standardized per column, a constant one with std 1; the decoder gives the mean, a learned log sigma^2 per feature
floored at log 1e-3; NLL 0.5 * sum[log 2 pi + log sigma^2 + (x - mean)^2 / sigma^2]), as src/Vae.ML/Torch/VaeLoss.cs.
The default (mlp, bernoulli) is the original, unchanged.
"""
import argparse, json, math, resource, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("data"); p.add_argument("rows", type=int); p.add_argument("width", type=int)
p.add_argument("--threads", type=int, default=2); p.add_argument("--seed", type=int, default=0)
p.add_argument("--latent", type=int, default=2)
p.add_argument("--arch", choices=["mlp", "conv"], default="mlp")
p.add_argument("--likelihood", choices=["bernoulli", "gaussian"], default="bernoulli")
a = p.parse_args()
torch.set_num_threads(a.threads); torch.manual_seed(a.seed)


class VAE(nn.Module):
    def __init__(s, w, d=2):
        super().__init__()
        s.w = w
        s.fc1 = nn.Linear(w, 400); s.fc21 = nn.Linear(400, d); s.fc22 = nn.Linear(400, d)
        s.fc3 = nn.Linear(d, 400); s.fc4 = nn.Linear(400, w)
    def encode(s, x):
        h = F.relu(s.fc1(x)); return s.fc21(h), s.fc22(h)
    def decode(s, z): return torch.sigmoid(s.fc4(F.relu(s.fc3(z))))
    def forward(s, x):
        mu, lv = s.encode(x.view(-1, s.w))
        z = mu + torch.randn_like(lv) * torch.exp(0.5 * lv)
        return s.decode(z), mu, lv


class Conv(nn.Module):
    """The twin of Vae.ML's convolutional VAE on 1x28x28 images; its decoder gives logits (or Gaussian means)."""
    def __init__(s, w, d=2):
        super().__init__()
        s.w = w
        s.enc_conv1 = nn.Conv2d(1, 32, 3, stride=2, padding=1); s.enc_conv2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        s.enc_fc1 = nn.Linear(3136, 400); s.enc_mu = nn.Linear(400, d); s.enc_logvar = nn.Linear(400, d)
        s.dec_fc1 = nn.Linear(d, 400); s.dec_fc2 = nn.Linear(400, 3136)
        s.dec_deconv1 = nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1)
        s.dec_deconv2 = nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1)
        s.dec_deconv3 = nn.ConvTranspose2d(32, 1, 3, stride=1, padding=1)
    def forward(s, x):
        h = F.relu(s.enc_conv2(F.relu(s.enc_conv1(x.view(-1, 1, 28, 28))))).flatten(1)
        h = F.relu(s.enc_fc1(h)); mu, lv = s.enc_mu(h), s.enc_logvar(h)
        z = mu + torch.randn_like(lv) * torch.exp(0.5 * lv)
        h = F.relu(s.dec_fc2(F.relu(s.dec_fc1(z)))).view(-1, 64, 7, 7)
        h = F.relu(s.dec_deconv2(F.relu(s.dec_deconv1(h))))
        return s.dec_deconv3(h).flatten(1), mu, lv


class MlpOutput(VAE):
    """The MLP with the decoder's raw output (logits, or Gaussian means) instead of the sigmoid."""
    def decode(s, z): return s.fc4(F.relu(s.fc3(z)))


def kl(mu, lv):
    return -0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp())


def loss_fn(xh, x, mu, lv, w):
    bce = F.binary_cross_entropy(xh, x.view(-1, w), reduction="sum")
    return bce + kl(mu, lv)


LOG_TWO_PI, MIN_LOG_VAR = math.log(2 * math.pi), math.log(1e-3)


with open(a.data, "rb") as f:
    X = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).view(a.rows, a.width)
if a.arch == "conv" and a.width != 784:
    sys.exit("--arch conv needs 28x28 images (width 784)")
m = VAE(a.width, a.latent) if (a.arch, a.likelihood) == ("mlp", "bernoulli") else (Conv if a.arch == "conv" else MlpOutput)(a.width, a.latent)
params = list(m.parameters())
if a.likelihood == "gaussian":
    std = X.std(0, unbiased=False); std[std == 0] = 1
    X = (X - X.mean(0)) / std
    log_var = nn.Parameter(torch.zeros(a.width)); params.append(log_var)


def step_loss(x):
    out, mu, lv = m(x)
    if a.likelihood == "gaussian":
        lvc = log_var.clamp_min(MIN_LOG_VAR)
        return 0.5 * torch.sum((x - out).pow(2) * torch.exp(-lvc) + lvc + LOG_TWO_PI) + kl(mu, lv)
    if a.arch == "mlp":
        return loss_fn(out, x, mu, lv, a.width)
    return F.binary_cross_entropy_with_logits(out, x, reduction="sum") + kl(mu, lv)


opt = torch.optim.Adam(params, lr=1e-3)


def epoch(rows, batch):
    data = X[:rows]
    t = time.perf_counter(); m.train(); tot = 0.0
    perm = torch.randperm(rows)
    for i in range(0, rows, batch):
        x = data[perm[i:i + batch]]
        opt.zero_grad(); l = step_loss(x); l.backward(); opt.step(); tot += l.item()
    return {"seconds": time.perf_counter() - t, "loss": tot / rows}


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n"); sys.stdout.flush()


reply({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(), "arch": a.arch, "likelihood": a.likelihood})
for line in sys.stdin:
    if not line.strip():
        continue
    cmd = json.loads(line)
    if cmd["cmd"] == "epoch":
        reply(epoch(min(int(cmd["rows"]), a.rows), int(cmd["batch"])))
    elif cmd["cmd"] == "peak":
        reply({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "torch": torch.__version__, "threads": torch.get_num_threads()})
    elif cmd["cmd"] == "quit":
        break
    else:
        reply({"error": "unknown command " + str(cmd.get("cmd"))})
