#!/usr/bin/python3
"""Trains the report's PyTorch VAE on a fixed slice of MNIST, as the reference script's tensor loader does, and prints
JSON: the per-epoch training loss (per image) and where the final weights were written.

Usage: pytorch_mnist_slice.py SEED_VAE_PY IMAGES.f32 WEIGHTS.f32 [--epochs E] [--batch B] [--seed S] [--threads T]
IMAGES.f32 holds rows of 784 little-endian float32 pixels in [0, 1] (written by the C# test from the same IDX files).
The VAE class and loss_fn are taken from SEED_VAE_PY's own source (running it would train on all of MNIST). The loop is
the reference's: manual_seed, VAE(2), Adam(1e-3), per epoch one torch.randperm over the rows and one batch per B rows,
loss summed over the batch. WEIGHTS.f32 receives the final state_dict as raw float32, in state_dict order.
"""
import argparse, ast, json
import torch

p = argparse.ArgumentParser()
p.add_argument("reference"); p.add_argument("images"); p.add_argument("weights")
p.add_argument("--epochs", type=int, default=2); p.add_argument("--batch", type=int, default=128)
p.add_argument("--seed", type=int, default=0); p.add_argument("--threads", type=int, default=2)
a = p.parse_args()

source = open(a.reference).read()
keep = [node for node in ast.parse(source).body if isinstance(node, ast.ClassDef) and node.name == "VAE"
        or isinstance(node, ast.FunctionDef) and node.name == "loss_fn"]
assert len(keep) == 2, "the reference must define class VAE and loss_fn"
scope = {}
exec("import torch, torch.nn as nn, torch.nn.functional as F", scope)
exec(compile(ast.Module(body=keep, type_ignores=[]), a.reference, "exec"), scope)
VAE, loss_fn = scope["VAE"], scope["loss_fn"]

torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
X = torch.frombuffer(bytearray(open(a.images, "rb").read()), dtype=torch.float32).reshape(-1, 784)
n = X.shape[0]
m = VAE(2); opt = torch.optim.Adam(m.parameters(), lr=1e-3)
history = []
for epoch in range(1, a.epochs + 1):
    m.train(); total = 0.0
    perm = torch.randperm(n)
    for i in range(0, n, a.batch):
        x = X[perm[i:i + a.batch]]
        opt.zero_grad(); xh, mu, lv = m(x); loss = loss_fn(xh, x, mu, lv); loss.backward(); opt.step(); total += loss.item()
    history.append(total / n)

state = m.state_dict()
with open(a.weights, "wb") as f:
    for t in state.values():
        f.write(t.detach().contiguous().numpy().astype("<f4").tobytes())
print(json.dumps({"rows": n, "train_loss": history, "parameters": [[k, list(v.shape)] for k, v in state.items()],
                  "torch": torch.__version__}))
