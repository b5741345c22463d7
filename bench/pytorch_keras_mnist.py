#!/usr/bin/env python3
"""Time PyTorch on the keras-mnist model next to cnnviz's engine, on this CPU.

Optional: needs Debian's python3-torch (apt-get install python3-torch); it is
not part of `go test`. It trains the reference model (two 3x3 convolutions,
max pooling, dropout, dense 128, dense 10; Adadelta lr 1.0, rho 0.95,
eps 1e-7; batch 128) with the same number of threads as the Go benchmark,
on random batches (the timing does not depend on the pixel values), and
times single-image inference with one thread. It runs the Go benchmarks in
the same window, alternating with PyTorch, and prints medians and ratios.

    /usr/bin/python3 bench/pytorch_keras_mnist.py            # 3 rounds
    /usr/bin/python3 bench/pytorch_keras_mnist.py --rounds 5 --steps 40

(/usr/bin/python3: Debian's interpreter, the one python3-torch installs
into; a python3 from pyenv or a venv earlier on PATH will not find torch.)
On a shared machine, run it several times: both sides slow down when other
jobs run, PyTorch's OpenMP threads more than the Go workers.
"""

import argparse
import os
import re
import statistics
import subprocess
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    raise SystemExit("needs PyTorch: apt-get install python3-torch, then run with /usr/bin/python3")


class KerasMNIST(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.drop1 = nn.Dropout(0.25)
        self.fc1 = nn.Linear(9216, 128)
        self.drop2 = nn.Dropout(0.5)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.drop1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.drop2(x)
        return self.fc2(x)


def torch_train(steps, threads, batch=128):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = KerasMNIST()
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0, rho=0.95, eps=1e-7)
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    model.train()

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(3):  # warm up
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def torch_predict_ms(reps=300):
    torch.set_num_threads(1)
    model = KerasMNIST().eval()
    x = torch.rand(1, 1, 28, 28)
    times = []
    with torch.no_grad():
        for _ in range(20):
            model(x)
        for _ in range(reps):
            t = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def go_bench(pattern, benchtime):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        ["go", "test", "-run", "^$", "-bench", pattern, "-benchtime", benchtime, "./engine/"],
        cwd=root, capture_output=True, text=True, check=True).stdout
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=30, help="training steps timed per round")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"{time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs ({cpu}), load average {os.getloadavg()[0]:.2f}")
    print(f"PyTorch {torch.__version__}, {args.threads} threads; cnnviz engine via go test -bench")
    torch_rates, go_rates, torch_ms, go_ms = [], [], [], []
    for r in range(args.rounds):
        torch_rates.append(torch_train(args.steps, args.threads))
        out = go_bench("^BenchmarkTrainStepKerasMNIST$", f"{args.steps}x")
        go_rates.append(float(re.search(r"([\d.]+) images/s", out).group(1)))
        torch_ms.append(torch_predict_ms())
        out = go_bench("^BenchmarkPredictKerasMNIST$", "2000x")
        go_ms.append(float(re.search(r"([\d.]+) ns/op", out).group(1)) / 1e6)
        print(f"round {r + 1}: train images/s torch {torch_rates[-1]:.0f}, cnnviz {go_rates[-1]:.0f}; "
              f"predict ms torch {torch_ms[-1]:.3f}, cnnviz {go_ms[-1]:.3f}")
    t, g = statistics.median(torch_rates), statistics.median(go_rates)
    tp, gp = statistics.median(torch_ms), statistics.median(go_ms)
    print(f"median training: PyTorch {t:.0f} images/s, cnnviz {g:.0f} images/s: cnnviz/PyTorch = {g / t:.2f}x")
    print(f"median single-image prediction: PyTorch {tp:.3f} ms (1 thread), cnnviz {gp:.3f} ms: "
          f"PyTorch/cnnviz = {tp / gp:.2f}x")


if __name__ == "__main__":
    main()
