#!/usr/bin/env python3
"""PyTorch twin of Vae.ML's two architectures (same layers, names and sizes as src/Vae.ML/Torch/VaeNetworkSpec.cs):
MLP 784-400-2 and the convolutional VAE (enc_conv1 1->32 s2, enc_conv2 32->64 s2, enc_fc1 3136->400, mu/logvar;
dec_fc1 2->400, dec_fc2 400->3136, dec_deconv1 64->64 s2, dec_deconv2 64->32 s2, dec_deconv3 32->1), summed BCE + KL,
Adam 1e-3, batch 128, 20 epochs on full MNIST; test loss with sampled z (the report's definition) per epoch.
Usage: conv_vs_mlp.py DATA_DIR SEED... (DATA_DIR holds the gzipped official IDX image files). Needs CUDA."""
import gzip, json, os, sys, time
import torch, torch.nn as nn, torch.nn.functional as F
dev = torch.device("cuda")
root, seeds = sys.argv[1], [int(s) for s in sys.argv[2:]] or [0]
def load(name):
    b = gzip.open(os.path.join(root, name + ".gz"), "rb").read()
    return torch.frombuffer(bytearray(b[16:]), dtype=torch.uint8).view(-1, 784).float().div_(255).to(dev)
X, Xt = load("train-images-idx3-ubyte"), load("t10k-images-idx3-ubyte")

class Mlp(nn.Module):
    def __init__(s, d=2):
        super().__init__(); s.fc1 = nn.Linear(784, 400); s.fc21 = nn.Linear(400, d); s.fc22 = nn.Linear(400, d)
        s.fc3 = nn.Linear(d, 400); s.fc4 = nn.Linear(400, 784)
    def encode(s, x): h = F.relu(s.fc1(x)); return s.fc21(h), s.fc22(h)
    def decode(s, z): return s.fc4(F.relu(s.fc3(z)))

class Conv(nn.Module):
    def __init__(s, d=2):
        super().__init__()
        s.enc_conv1 = nn.Conv2d(1, 32, 3, stride=2, padding=1); s.enc_conv2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        s.enc_fc1 = nn.Linear(3136, 400); s.enc_mu = nn.Linear(400, d); s.enc_logvar = nn.Linear(400, d)
        s.dec_fc1 = nn.Linear(d, 400); s.dec_fc2 = nn.Linear(400, 3136)
        s.dec_deconv1 = nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1)
        s.dec_deconv2 = nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1)
        s.dec_deconv3 = nn.ConvTranspose2d(32, 1, 3, stride=1, padding=1)
    def encode(s, x):
        h = F.relu(s.enc_conv2(F.relu(s.enc_conv1(x.view(-1, 1, 28, 28))))).flatten(1)
        h = F.relu(s.enc_fc1(h)); return s.enc_mu(h), s.enc_logvar(h)
    def decode(s, z):
        h = F.relu(s.dec_fc2(F.relu(s.dec_fc1(z)))).view(-1, 64, 7, 7)
        h = F.relu(s.dec_deconv2(F.relu(s.dec_deconv1(h)))); return s.dec_deconv3(h).flatten(1)

def loss(m, x):
    mu, lv = m.encode(x); z = mu + torch.randn_like(lv) * torch.exp(0.5 * lv)
    return F.binary_cross_entropy_with_logits(m.decode(z), x, reduction="sum") - 0.5 * torch.sum(1 + lv - mu.pow(2) - lv.exp())

print(json.dumps({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}), flush=True)
for seed in seeds:
    for name, cls in [("mlp", Mlp), ("conv", Conv)]:
        torch.manual_seed(seed); m = cls().to(dev); opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        test = []; t0 = time.time()
        for ep in range(20):
            m.train(); perm = torch.randperm(60000, device=dev)
            for i in range(0, 60000, 128):
                x = X[perm[i:i + 128]]; opt.zero_grad(); l = loss(m, x); l.backward(); opt.step()
            m.eval(); tl = 0.0
            with torch.no_grad():
                for i in range(0, 10000, 128): tl += loss(m, Xt[i:i + 128]).item()
            test.append(round(tl / 10000, 3))
        print(json.dumps({"seed": seed, "arch": name, "test_loss_by_epoch": test, "seconds": round(time.time() - t0, 1)}), flush=True)
