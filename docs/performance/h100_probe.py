# H100 check of docs/performance.md (GPU section): the report VAE (784-400-2, seed_vae.py model/loss, Adam 1e-3) on
# 60,000 resident synthetic rows: eager epochs (loss read per step or not; Adam plain/foreach/fused; batch 128/512/4096),
# the whole step as one CUDA graph, the host cost of one tiny op, and CUDA kernels per step. Ran as is: python3 h100_probe.py
import json,time,torch,torch.nn as nn,torch.nn.functional as F
o={"torch":torch.__version__};d="cuda";torch.backends.cuda.matmul.allow_tf32=False;torch.manual_seed(0)
R,W=60000,784;X=torch.rand(R,W,device=d);S=torch.cuda.synchronize
class V(nn.Module):
 def __init__(s):
  super().__init__();s.a=nn.Linear(W,400);s.b=nn.Linear(400,2);s.c=nn.Linear(400,2);s.e=nn.Linear(2,400);s.f=nn.Linear(400,W)
 def forward(s,x):
  h=F.relu(s.a(x));m,v=s.b(h),s.c(h);z=m+torch.randn_like(v)*torch.exp(.5*v);return torch.sigmoid(s.f(F.relu(s.e(z)))),m,v
def L(y,x,m,v):return F.binary_cross_entropy(y,x,reduction="sum")-.5*torch.sum(1+v-m.pow(2)-v.exp())
def mk(**k):
 m=V().to(d);return m,torch.optim.Adam(m.parameters(),lr=1e-3,**k)
def ep(m,op,b,sy):
 S();t=time.perf_counter();p=torch.randperm(R,device=d);T=torch.zeros((),device=d)
 for i in range(0,R,b):
  x=X[p[i:i+b]];op.zero_grad();y,mu,v=m(x);l=L(y,x,mu,v);l.backward();op.step()
  if sy:l.item()
  else:T+=l.detach()
 T.item();S();return time.perf_counter()-t
def tm(n,f):
 f();r=sorted(f() for _ in range(3));o[n]=[round(z,4) for z in r]
m,op=mk();tm("b128_item",lambda:ep(m,op,128,1));tm("b128_nosync",lambda:ep(m,op,128,0))
for k in("foreach","fused"):
 try:
  a,b=mk(**{k:True});tm("b128_nosync_"+k,lambda:ep(a,b,128,0))
 except Exception as e:o[k]=str(e)[:99]
for B in(512,4096):
 a,b=mk();tm(f"b{B}_nosync",lambda:ep(a,b,B,0))
try:
 a,b=mk(capturable=True);I=torch.randperm(R,device=d)[:128].clone();T=torch.zeros((),device=d);s=torch.cuda.Stream();s.wait_stream(torch.cuda.current_stream())
 with torch.cuda.stream(s):
  for _ in range(3):b.zero_grad();x=X[I];y,mu,v=a(x);L(y,x,mu,v).backward();b.step()
 torch.cuda.current_stream().wait_stream(s);g=torch.cuda.CUDAGraph();b.zero_grad()
 with torch.cuda.graph(g):x=X[I];y,mu,v=a(x);l=L(y,x,mu,v);l.backward();b.step();T+=l.detach()
 def ge():
  S();t=time.perf_counter();p=torch.randperm(R,device=d)
  for i in range(0,R//128*128,128):I.copy_(p[i:i+128]);g.replay()
  T.item();S();return time.perf_counter()-t
 tm("graph_b128",ge)
except Exception as e:o["graph"]=str(e)[:199]
y=torch.zeros(1,device=d);S();t=time.perf_counter()
for _ in range(20000):y.add_(1)
S();o["tiny_op_us"]=(time.perf_counter()-t)/.02
from torch.profiler import profile,ProfilerActivity as A
x=X[:128]
with profile(activities=[A.CUDA]) as P:
 op.zero_grad();y,mu,v=m(x);L(y,x,mu,v).backward();op.step();S()
o["kernels"]=len([e for e in P.events() if e.device_type.name=="CUDA"])
print(json.dumps(o))
