"""A PyTorch training script (pytorch/examples' MNIST net: conv-conv-pool-dropout-fc-dropout-fc,
Adadelta, StepLR, a shuffling DataLoader) run twice, as written for PyTorch and with only its
imports changed to lamina, with no help in between: same seed, same initial weights, same shuffle,
same dropout masks, so the printed losses agree step by step."""
import os
import subprocess
import sys
import textwrap

import numpy as np

import lamina

from conftest import requires_torch

SCRIPT = textwrap.dedent('''
    import sys
    import numpy as np
    if sys.argv[1] == "torch":
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
        import torch.optim as optim
        from torch.optim.lr_scheduler import StepLR
        from torch.utils.data import DataLoader, TensorDataset
    else:
        import lamina as torch
        import lamina.nn as nn
        import lamina.nn.functional as F
        import lamina.optim as optim
        from lamina.optim.lr_scheduler import StepLR
        from lamina.utils.data import DataLoader, TensorDataset
    data = np.load(sys.argv[2])
    x, y = data["x"], data["y"]

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 32, 3, 1)
            self.conv2 = nn.Conv2d(32, 64, 3, 1)
            self.dropout1 = nn.Dropout(0.25)
            self.dropout2 = nn.Dropout(0.5)
            self.fc1 = nn.Linear(9216, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = F.relu(self.conv1(x))
            x = F.relu(self.conv2(x))
            x = F.max_pool2d(x, 2)
            x = self.dropout1(x)
            x = torch.flatten(x, 1)
            x = F.relu(self.fc1(x))
            x = self.dropout2(x)
            x = self.fc2(x)
            return F.log_softmax(x, dim=1)

    torch.manual_seed(1)
    model = Net()
    optimizer = optim.Adadelta(model.parameters(), lr=1.0)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    loader = DataLoader(TensorDataset(torch.from_numpy(x), torch.from_numpy(y)), batch_size=64, shuffle=True)
    for epoch in range(2):
        model.train()
        for data, target in loader:
            optimizer.zero_grad()
            loss = F.nll_loss(model(data), target)
            loss.backward()
            optimizer.step()
            print(f"loss {loss.item():.9g}")
        scheduler.step()
    print("after", torch.randn(3).tolist())
''')


def test_pytorch_mnist_script_prints_pytorchs_losses(tmp_path, data_root):
    requires_torch()
    from lamina.datasets import MNIST
    x, y = MNIST(data_root, train=True).arrays()
    np.savez(tmp_path / "data.npz", x=((x[:320] - 0.1307) / 0.3081).astype(np.float32), y=y[:320])
    (tmp_path / "script.py").write_text(SCRIPT)
    # the lamina under test: the installed package in CI (a clean checkout's python/ has no built _C)
    lamina_parent = os.path.dirname(os.path.dirname(os.path.abspath(lamina.__file__)))
    env = dict(os.environ, PYTHONPATH=lamina_parent + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = {}
    for fw in ("torch", "lamina"):
        p = subprocess.run([sys.executable, str(tmp_path / "script.py"), fw, str(tmp_path / "data.npz")],
                           capture_output=True, text=True, timeout=600, env=env)
        assert p.returncode == 0, p.stderr[-3000:]
        out[fw] = p.stdout.splitlines()
    losses = {fw: np.array([float(ln.split()[1]) for ln in lines if ln.startswith("loss")]) for fw, lines in out.items()}
    assert len(losses["torch"]) == len(losses["lamina"]) == 10
    # The same batches, weights and masks: only float32 summation order differs (GEMM, conv).
    np.testing.assert_allclose(losses["lamina"], losses["torch"], rtol=2e-4)
    assert out["lamina"][-1] == out["torch"][-1]  # and the generator ends where PyTorch's does
