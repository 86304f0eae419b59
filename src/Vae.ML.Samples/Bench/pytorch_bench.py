#!/usr/bin/python3
"""PyTorch contender for `vae-ml bench`: the original report's model and training step, tensor-fed.

The model, loss and loop are those of shared/reference/seed_vae.py with --loader tensor (784-400-2, BCE on the
sigmoid + KL, Adam 1e-3, batches X[perm[i:i+B]]). The bench starts this script once and drives it over stdin, one
JSON command per line, so that its epochs can be interleaved with Vae.ML's (A, B, A, B ...) while the other side
waits idle:

  {"cmd": "epoch", "rows": N, "batch": B}  -> {"seconds": s, "loss": per-row loss}   (one epoch on the first N rows)
  {"cmd": "peak"}                          -> {"peak_rss_mb": m, "torch": version, "threads": t}
  {"cmd": "quit"}                          -> exits

Usage: pytorch_bench.py DATA.f32 ROWS WIDTH [--threads T] [--seed S]
DATA.f32 holds ROWS x WIDTH little-endian float32 values in [0, 1], row-major.
"""
import argparse, json, resource, sys, time
import torch, torch.nn as nn, torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("data"); p.add_argument("rows", type=int); p.add_argument("width", type=int)
p.add_argument("--threads", type=int, default=2); p.add_argument("--seed", type=int, default=0)
p.add_argument("--latent", type=int, default=2)
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


def loss_fn(xh, x, mu, lv, w):
    bce = F.binary_cross_entropy(xh, x.view(-1, w), reduction="sum")
    kld = -0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp())
    return bce + kld


with open(a.data, "rb") as f:
    X = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).view(a.rows, a.width)
m = VAE(a.width, a.latent); opt = torch.optim.Adam(m.parameters(), lr=1e-3)


def epoch(rows, batch):
    data = X[:rows]
    t = time.perf_counter(); m.train(); tot = 0.0
    perm = torch.randperm(rows)
    for i in range(0, rows, batch):
        x = data[perm[i:i + batch]]
        opt.zero_grad(); xh, mu, lv = m(x); l = loss_fn(xh, x, mu, lv, a.width); l.backward(); opt.step(); tot += l.item()
    return {"seconds": time.perf_counter() - t, "loss": tot / rows}


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n"); sys.stdout.flush()


reply({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()})
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
