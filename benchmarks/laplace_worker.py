"""Laplace-approximated MLP (``laplace-torch``) for :mod:`benchmarks.bench_uncertainty`.

Run as a script by the Python of an environment that has ``torch`` and
``laplace-torch`` (they are not dependencies of the benchmarks)::

    python benchmarks/laplace_worker.py IN.npz OUT.npz

``IN.npz`` holds the splits of one data set (``X_train_<k>``, ``y_train_<k>``,
``X_test_<k>`` for ``k < n_splits``, ``hidden``, ``seed``); ``OUT.npz`` gets
``mean_<k>``, ``std_<k>`` (original units) and ``seconds_<k>`` (the time of
the fit: training, Laplace fit and hyperparameter optimisation).

Per split: inputs and targets standardised on the training set; a
``tanh`` network with the given hidden layer trained by full-batch Adam
(learning rate 0.01, 1000 steps) on the mean squared error; then
``Laplace(..., "regression", subset_of_weights="all",
hessian_structure="full")`` with the prior precision and the noise standard
deviation chosen by maximising the Laplace log marginal likelihood (Adam on
their logarithms, 50 steps, as in the package's documentation); the
predictive is the linearised (GLM) one plus the noise variance.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def _fit_predict(X, y, X_test, hidden: int, seed: int):
    import torch
    from laplace import Laplace

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    x_mean, x_std = X.mean(0), X.std(0)
    x_std[x_std == 0] = 1.0
    y_mean, y_std = y.mean(), y.std() or 1.0
    xt = torch.tensor((X - x_mean) / x_std, dtype=torch.float64)
    yt = torch.tensor(((y - y_mean) / y_std)[:, None], dtype=torch.float64)
    model = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], hidden),
        torch.nn.Tanh(),
        torch.nn.Linear(hidden, 1),
    ).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(1000):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(xt), yt).backward()
        optimizer.step()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(xt, yt), batch_size=len(xt)
    )
    la = Laplace(model, "regression", subset_of_weights="all", hessian_structure="full")
    la.fit(loader)
    log_prior = torch.zeros(1, requires_grad=True, dtype=torch.float64)
    log_sigma = torch.zeros(1, requires_grad=True, dtype=torch.float64)
    hyper = torch.optim.Adam([log_prior, log_sigma], lr=0.1)
    for _ in range(50):
        hyper.zero_grad()
        (-la.log_marginal_likelihood(log_prior.exp(), log_sigma.exp())).backward()
        hyper.step()
    xs = torch.tensor((X_test - x_mean) / x_std, dtype=torch.float64)
    with torch.no_grad():
        f_mu, f_var = la(xs, pred_type="glm")
        var = f_var.squeeze() + la.sigma_noise.detach() ** 2
    mean = f_mu.squeeze().numpy() * y_std + y_mean
    std = np.sqrt(var.numpy()) * y_std
    return mean, std


def main(argv: list[str]) -> int:
    source, target = argv
    data = np.load(source)
    hidden, seed = int(data["hidden"]), int(data["seed"])
    out = {}
    k = 0
    while f"X_train_{k}" in data:
        started = time.perf_counter()
        mean, std = _fit_predict(
            data[f"X_train_{k}"],
            data[f"y_train_{k}"],
            data[f"X_test_{k}"],
            hidden,
            seed + k,
        )
        out[f"seconds_{k}"] = time.perf_counter() - started
        out[f"mean_{k}"], out[f"std_{k}"] = mean, std
        k += 1
    np.savez(target, **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
