"""Grid search on a Dask cluster gives the results of a local search."""

from types import SimpleNamespace

import joblib
import numpy as np
import pytest
from sklearn.datasets import make_friedman1
from sklearn.model_selection import GridSearchCV

from sklearn_lm._threads import configure_tensorflow_threads
from sklearn_lm.estimators import LMRegressor

distributed = pytest.importorskip("distributed")

PARAM_GRID = {"damping": [1e-3, 1e-1], "batch_size": [None, 32]}

# max_iter=20 keeps the test fast; the estimator reports the unfinished
# optimisation with a ConvergenceWarning, which is not what is tested here.
# (scikit-learn passes the test's warning filters on to the Dask workers.)
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def dask_cluster():
    """A two-process cluster on the loopback interface, closed after the tests.

    Yields ``client`` and ``warmup``: each worker starts loading TensorFlow
    (through :func:`configure_tensorflow_threads`) as soon as the cluster is
    up, so that this overlaps with the local search of the test; ``warmup``
    holds those futures, whose results are the workers' intra-op thread counts.
    """
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    try:
        client = distributed.Client(cluster)
        try:
            client.wait_for_workers(2, timeout=120)
            warmup = [
                client.submit(
                    configure_tensorflow_threads,
                    pure=False,
                    workers=[address],
                    allow_other_workers=False,
                )
                for address in client.scheduler_info()["workers"]
            ]
            yield SimpleNamespace(client=client, warmup=warmup)
        finally:
            client.close()
    finally:
        cluster.close()


def _search():
    # float64: the workers run TensorFlow with one thread, this process with
    # its default pool; float64 keeps any difference in summation order far
    # below the tolerance.
    return GridSearchCV(
        LMRegressor(hidden=(5,), max_iter=20, random_state=0, dtype="float64"),
        PARAM_GRID,
        cv=3,
    )


def test_grid_search_on_dask_matches_local(dask_cluster):
    X, y = make_friedman1(n_samples=150, n_features=5, random_state=0)

    local = _search().fit(X, y)

    # Dask's nanny sets OMP_NUM_THREADS=1 in its workers: one TensorFlow
    # thread per single-threaded worker.
    assert [f.result(timeout=300) for f in dask_cluster.warmup] == [1, 1]
    with distributed.get_task_stream(dask_cluster.client) as stream:
        with joblib.parallel_backend("dask"):
            remote = _search().fit(X, y)
    assert len(stream.data) > 0  # the fits really ran on the cluster

    assert remote.best_params_ == local.best_params_
    np.testing.assert_allclose(
        remote.cv_results_["mean_test_score"],
        local.cv_results_["mean_test_score"],
        rtol=1e-10,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        remote.cv_results_["std_test_score"],
        local.cv_results_["std_test_score"],
        rtol=1e-8,
        atol=1e-12,
    )
