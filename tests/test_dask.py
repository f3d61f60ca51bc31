"""GridSearchCV over ``hidden`` runs unchanged on a Dask cluster (joblib's dask backend)."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV, GroupKFold
from sklearn.pipeline import Pipeline

from skasc import DwsCNNClassifier, RandomCrop, SpecAugment

distributed = pytest.importorskip("distributed")


def _search():
    rng = np.random.default_rng(0)
    y = np.array(["bus", "park", "tram"])[np.arange(90) % 3]
    X = rng.normal(size=(90, 8, 12)).astype(np.float32)
    X[y == "park", :3] += 1.5
    X[y == "tram", 4:7] += 1.5
    groups = np.arange(90) // 3
    pipe = Pipeline([("crop", RandomCrop()), ("specaug", SpecAugment(2, 2)),
                     ("clf", DwsCNNClassifier(max_epochs=4, batch_size=16, random_state=0))])
    return GridSearchCV(pipe, {"clf__hidden": [2, 4, 8]}, cv=GroupKFold(3), n_jobs=-1), X, y, groups


def test_grid_search_on_local_dask_cluster_matches_local_run():
    import joblib

    local, X, y, groups = _search()
    local.set_params(n_jobs=1).fit(X, y, groups=groups)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        on_dask, _, _, _ = _search()
        with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
            on_dask.fit(X, y, groups=groups)
        assert len(client.scheduler_info()["workers"]) == 2
        assert len(stream.data) >= 9  # the 3 candidates x 3 folds really ran on the cluster
    assert on_dask.best_params_ == local.best_params_
    np.testing.assert_allclose(on_dask.cv_results_["mean_test_score"], local.cv_results_["mean_test_score"])


def test_feature_extraction_on_a_dask_cluster_writes_the_same_store(tmp_path):
    """LogMel's chunks computed by a cluster's workers, written by the caller into its store."""
    import joblib
    import soundfile as sf

    from skasc import LogMel, Reassembler

    rng = np.random.default_rng(0)
    rows = []
    for r in range(40):  # two chunks of 20 recordings
        for k in range(2):
            path = tmp_path / f"park-lyon-{1000 + r}-{40000 + r}-{k}-a.wav"
            sf.write(path, 0.1 * rng.normal(size=8000), 8000, subtype="PCM_16")
            rows.append(str(path))
    audio = Reassembler(sr=8000).fit_transform(rows)
    small = dict(sr=8000, n_fft=256, win_length=200, hop_length=80, n_mels=16)
    local = LogMel(**small).fit_transform(audio)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
            on_dask = LogMel(**small, n_jobs=-1, feature_store=tmp_path / "store").fit_transform(audio)
        assert len(stream.data) >= 2  # the chunks ran on the cluster
    np.testing.assert_array_equal(np.asarray(on_dask), np.asarray(local))
    assert type(on_dask.store).__name__ == "DiskStore"
