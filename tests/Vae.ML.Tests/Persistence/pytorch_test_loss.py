#!/usr/bin/python3
"""Loads a Vae.ML safetensors export into the report's PyTorch VAE class and computes its test loss.

Usage: pytorch_test_loss.py SEED_VAE_PY WEIGHTS.safetensors INPUTS.f32 [--latent D] [--seed S] [--train-steps N]
SEED_VAE_PY is the reference script (shared/reference/seed_vae.py); its VAE class and loss_fn are taken from its source
as they are (the script itself trains when run, so it is not imported). INPUTS.f32 holds rows of 784 little-endian
float32 values in [0, 1]. Prints JSON: the per-image test loss at z = mu (what Vae.ML's Score column computes) and with
z sampled (as the reference's test loop), and the number of rows.
With --train-steps N it goes the other way: a fresh VAE (seeded) takes N Adam steps on the inputs in PyTorch and is
written to WEIGHTS.safetensors, for Vae.ML to import; the losses printed are then those of the PyTorch-trained model.
No safetensors package needed: the format is an 8-byte length, a JSON header and raw little-endian data.
"""
import argparse, ast, hashlib, json, struct
import torch

p = argparse.ArgumentParser()
p.add_argument("reference"); p.add_argument("weights"); p.add_argument("inputs")
p.add_argument("--latent", type=int, default=2); p.add_argument("--seed", type=int, default=0)
p.add_argument("--train-steps", type=int, default=0)
a = p.parse_args()

def load_safetensors(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n)); data = f.read()
    # A Vae.ML file carries the SHA-256 of its tensor bytes; recomputed here as any Python user would.
    load_safetensors.data_sha256 = hashlib.sha256(data).hexdigest()
    dtypes = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16}
    out = {}
    for name, info in header.items():
        if name == "__metadata__": continue
        begin, end = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtypes[info["dtype"]])
        out[name] = t.reshape(info["shape"])
    return out, header.get("__metadata__", {})

# Take the VAE class and loss_fn from the reference's own source.
source = open(a.reference).read()
tree = ast.parse(source)
keep = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "VAE"
        or isinstance(node, ast.FunctionDef) and node.name == "loss_fn"]
assert len(keep) == 2, "the reference must define class VAE and loss_fn"
scope = {}
exec("import torch, torch.nn as nn, torch.nn.functional as F", scope)
exec(compile(ast.Module(body=keep, type_ignores=[]), a.reference, "exec"), scope)
VAE, loss_fn = scope["VAE"], scope["loss_fn"]

def save_safetensors(path, tensors, metadata):
    header, offset, blobs = {"__metadata__": metadata}, 0, []
    for name, t in tensors.items():
        b = t.detach().contiguous().to(torch.float32).numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b); blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h))); f.write(h); f.write(b"".join(blobs))

x = torch.frombuffer(bytearray(open(a.inputs, "rb").read()), dtype=torch.float32).reshape(-1, 784)
if a.train_steps > 0:
    torch.manual_seed(a.seed)
    model = VAE(a.latent); opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(a.train_steps):
        batch = x[(step * 64) % x.shape[0]:][:64]
        opt.zero_grad(); xh, mu, lv = model(batch); loss_fn(xh, batch, mu, lv).backward(); opt.step()
    metadata = {"format": "pt", "trained_by": "pytorch_test_loss.py"}
    save_safetensors(a.weights, model.state_dict(), metadata)
else:
    state, metadata = load_safetensors(a.weights)
    model = VAE(a.latent)
    model.load_state_dict(state)  # strict: every name and shape must match the report's class
model.eval()

with torch.no_grad():
    mu, lv = model.encode(x)
    at_mean = loss_fn(model.decode(mu), x, mu, lv).item() / x.shape[0]
    torch.manual_seed(a.seed)
    xh, mu2, lv2 = model(x)
    sampled = loss_fn(xh, x, mu2, lv2).item() / x.shape[0]
print(json.dumps({"rows": x.shape[0], "test_loss_at_mean": at_mean, "test_loss_sampled": sampled,
                  "metadata": metadata, "data_sha256": getattr(load_safetensors, "data_sha256", None),
                  "torch": torch.__version__}))
