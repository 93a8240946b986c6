"""The recogniser's trees: gradient-boosted trees fitted with sklearn, exported to the plain arrays of
`recognition.model.TreeEnsemble` (what ships; no pickle). Used by train_recognizer and by train_real's folds."""

from __future__ import annotations

import numpy as np

from ..recognition.model import TreeEnsemble


def export_trees(clf, classes: tuple[str, ...]) -> TreeEnsemble:
    """A fitted sklearn HistGradientBoostingClassifier as plain arrays (numerical splits only)."""
    parts = {k: [] for k in ("feature", "threshold", "missing_left", "left", "right", "is_leaf", "value")}
    starts, tclass, depth, off = [], [], 0, 0
    for iteration in clf._predictors:
        if len(iteration) != len(classes):
            raise RuntimeError("expected one tree per class and iteration")
        for k, pred in enumerate(iteration):
            nd = pred.nodes
            if np.any(nd["is_categorical"]):
                raise RuntimeError("categorical splits are not supported")
            starts.append(off)
            tclass.append(k)
            off += len(nd)
            depth = max(depth, int(pred.get_max_depth()))
            parts["feature"].append(nd["feature_idx"].astype(np.int16))
            parts["threshold"].append(nd["num_threshold"].astype(np.float64))
            parts["missing_left"].append(nd["missing_go_to_left"].astype(np.uint8))
            parts["left"].append(nd["left"].astype(np.int16))
            parts["right"].append(nd["right"].astype(np.int16))
            parts["is_leaf"].append(nd["is_leaf"].astype(np.uint8))
            parts["value"].append(nd["value"].astype(np.float64))
    arr = {k: np.concatenate(v) for k, v in parts.items()}
    return TreeEnsemble(classes=classes, baseline=np.asarray(clf._baseline_prediction, dtype=np.float64).reshape(-1),
                        tree_start=np.asarray(starts, dtype=np.int32), tree_class=np.asarray(tclass, dtype=np.int16),
                        depth=depth, **arr)


def fit(x: np.ndarray, y: np.ndarray, classes: tuple[str, ...], leaves: int, iterations: int, learning_rate: float,
        seed: int, weight: np.ndarray | None = None) -> TreeEnsemble:
    """Gradient-boosted trees on the raw features (NaN = missing, handled by the trees), exported to arrays
    and checked against sklearn's own probabilities."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    clf = HistGradientBoostingClassifier(max_iter=iterations, max_leaf_nodes=leaves, learning_rate=learning_rate,
                                         min_samples_leaf=20, l2_regularization=1.0, early_stopping=False,
                                         random_state=seed)
    from threadpoolctl import threadpool_limits

    x = np.where(np.isnan(x).all(axis=0), 0.0, x)  # an all-missing column breaks sklearn's binning
    with threadpool_limits(1):  # the same trees on any machine: sums in one order, whatever its cores
        clf.fit(x, y, sample_weight=weight)
    if list(clf.classes_) != list(range(len(classes))):
        raise RuntimeError("every class needs training windows")
    model = export_trees(clf, classes)
    probe = x[:: max(1, len(x) // 500)]
    if not np.allclose(model.proba(probe), clf.predict_proba(probe), atol=1e-9):
        raise RuntimeError("exported trees disagree with the fitted model")
    small = model.rounded()  # what gets saved; everything downstream (metrics) uses exactly this
    if np.mean(small.proba(probe).argmax(1) == clf.predict(probe)) < 0.99:
        raise RuntimeError("float32 rounding changed the model's answers")
    return small
