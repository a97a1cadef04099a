"""scikit-learn's IsolationForest (after a StandardScaler) fitted and scored with the same trees
and the same scores, without its per-tree Python overhead. Plain functions, no Dagster.

Why: scoring every day of a backfill fits one forest per day (`scoring._forest_scores`), and
`IsolationForest.fit` spends ~2 ms a tree in Python (cloning, parameter and input checks,
random-state plumbing) around ~0.1 ms of tree building: 100 trees x 360 days was most of a
first run's time. Here the trees come from the same Cython builder with the same inputs, seeds
and sample draws, so every score is bit for bit what
`make_pipeline(StandardScaler(), IsolationForest(n_estimators, random_state=...))` gives
(tests/anomalies/test_forest.py checks it against scikit-learn). The builder classes are
scikit-learn internals: pyproject pins the minor version that test was run with.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from sklearn.preprocessing import StandardScaler
from sklearn.tree._criterion import MSE
from sklearn.tree._splitter import RandomSplitter
from sklearn.tree._tree import DepthFirstTreeBuilder, Tree
from sklearn.utils.random import sample_without_replacement

# IsolationForest's defaults: max_samples='auto' is min(256, n), every feature per tree.
MAX_SAMPLES = 256
MAX_INT = np.iinfo(np.int32).max
_local = threading.local()


@dataclass(frozen=True)
class Forest:
    """A fitted scaler and isolation trees: what scoring a row needs."""

    scaler: StandardScaler
    trees: list[Tree]
    # Per tree and node: the depth of the node plus the average path length of the training
    # samples left in it, minus one (what a row reaching that leaf adds to its path).
    leaf_paths: list[np.ndarray]
    max_samples: int

    def score(self, x: np.ndarray) -> np.ndarray:
        """The anomaly score 2^(-E[path length] / c(max_samples)) of each row: equal to
        `-IsolationForest.score_samples` (higher = more anomalous)."""
        x32 = _standardised(self.scaler, x)
        depths = np.zeros(x32.shape[0], order="f")
        # Summed tree by tree in the forest's order, as scikit-learn does (float addition is
        # not associative: another order could change the last bit).
        for tree, paths in zip(self.trees, self.leaf_paths, strict=True):
            depths += paths[tree.apply(x32)]
        denominator = len(self.trees) * _average_path_length(np.array([self.max_samples]))
        ratio = np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0)
        return 2 ** (-ratio)

    def training_line(self, x_train: np.ndarray, contamination: float) -> float:
        """The score above which `contamination` of the training rows lie: `-offset_` of an
        IsolationForest fitted with that contamination on `x_train`."""
        return -float(np.percentile(-self.score(x_train), 100.0 * contamination))


def fit_forest(x: np.ndarray, n_estimators: int, random_state: int) -> Forest:
    """Fit the scaler and the trees `IsolationForest(n_estimators, random_state=random_state)`
    would fit on `x` (rows without NaN), in its pipeline after a StandardScaler."""
    scaler = StandardScaler().fit(x)
    x32 = _standardised(scaler, x)
    n = x32.shape[0]
    max_samples = min(MAX_SAMPLES, n)
    random = _generator()
    # The regression target IsolationForest gives its trees: uniform noise (a random split
    # ignores it, but a node of equal targets would stop splitting, so it is the same draw).
    random.seed(random_state)
    y = random.uniform(size=n).reshape(-1, 1)
    builder = _IsolationTrees(max_samples, int(np.ceil(np.log2(max(max_samples, 2)))), random)
    trees, leaf_paths = [], []
    for sample_seed, tree_seed in _seeds(n_estimators, random_state):
        rows = _sample_rows(sample_seed, n, max_samples, x32.shape[1])
        tree = builder.build(x32[rows], y[rows], tree_seed)
        trees.append(tree)
        path_lengths = _average_path_lengths()[tree.n_node_samples]
        leaf_paths.append(tree.compute_node_depths() + path_lengths - 1.0)
    return Forest(scaler, trees, leaf_paths, max_samples)


def _standardised(scaler: StandardScaler, x: np.ndarray) -> np.ndarray:
    """`scaler.transform(x)` as the forest reads it (float32, C order): the same subtraction
    and division, without the input checks that cost more than the arithmetic per day."""
    centred = np.asarray(x, dtype=np.float64) - scaler.mean_
    return np.ascontiguousarray(centred / scaler.scale_, dtype=np.float32)


class _IsolationTrees:
    """Builds the ExtraTreeRegressor(max_features=1, splitter='random') trees of an isolation
    forest as `BaseDecisionTree._fit` builds them: the same criterion, splitter and builder.

    scikit-learn gives each tree every row, with weight 1 on its sample and 0 elsewhere; the
    splitter drops the zero-weight rows and keeps the others in row order, and a weight of 1
    multiplies nothing, so the sampled rows alone, in row order, build the same tree without a
    pass over the whole training set per tree. One criterion, splitter and builder serve every
    tree: a build starts by resetting them (`Splitter.init`, then `Criterion.init` per node).
    """

    def __init__(self, max_samples: int, max_depth: int, random: np.random.RandomState) -> None:
        self._random = random
        splitter = RandomSplitter(MSE(1, max_samples), 1, 1, 0.0, random, None)
        self._builder = DepthFirstTreeBuilder(splitter, 2, 1, 0.0, max_depth, 0.0)

    def build(self, x32: np.ndarray, y: np.ndarray, seed: int) -> Tree:
        self._random.seed(seed)  # the splitter takes its one draw when the build starts
        tree = Tree(x32.shape[1], np.array([1], dtype=np.intp), 1)
        self._builder.build(tree, x32, y, None, None)
        return tree


@lru_cache(maxsize=8)
def _seeds(n_estimators: int, random_state: int) -> tuple[tuple[int, int], ...]:
    """Per tree: the seed of its sample draw (BaseBagging's `seeds`) and of its splitter (what
    `_set_random_states` gives the tree's `random_state`, drawn from the same seed)."""
    seeds = np.random.RandomState(random_state).randint(MAX_INT, size=n_estimators)
    return tuple((int(seed), int(np.random.RandomState(seed).randint(MAX_INT))) for seed in seeds)


@lru_cache(maxsize=4096)
def _sample_rows(seed: int, n: int, max_samples: int, n_features: int) -> np.ndarray:
    """The rows a tree is fitted on, in row order (`_generate_bagging_indices` without
    bootstrap: the draw of all features comes first from the same generator, then the rows).
    Cached: in a backfill the training set often has the same size from one day to the next,
    and drawing 256 of 10,000 rows permutes all 10,000."""
    random = _generator()
    random.seed(seed)
    sample_without_replacement(n_features, n_features, random_state=random)
    rows = np.sort(sample_without_replacement(n, max_samples, random_state=random))
    rows.setflags(write=False)
    return rows


def _generator() -> np.random.RandomState:
    """This thread's generator, re-seeded before each use: constructing a RandomState costs
    ~0.25 ms (it first seeds itself from the OS), re-seeding one a few microseconds, and the
    draws are the same as from a new RandomState(seed)."""
    if not hasattr(_local, "random"):
        _local.random = np.random.RandomState(0)
    return _local.random


@lru_cache(maxsize=1)
def _average_path_lengths() -> np.ndarray:
    """c(n) for every node size a tree can have (0..MAX_SAMPLES), looked up per tree."""
    return _average_path_length(np.arange(MAX_SAMPLES + 1))


def _average_path_length(n_samples_leaf: np.ndarray) -> np.ndarray:
    """c(n), the average path length of an unsuccessful search in a binary search tree of n
    samples (scikit-learn's `_average_path_length`, same arithmetic)."""
    n = np.asarray(n_samples_leaf, dtype=np.float64).reshape((1, -1))
    out = np.zeros(n.shape)
    mask_1 = n <= 1
    mask_2 = n == 2
    rest = ~np.logical_or(mask_1, mask_2)
    out[mask_2] = 1.0
    out[rest] = 2.0 * (np.log(n[rest] - 1.0) + np.euler_gamma) - 2.0 * (n[rest] - 1.0) / n[rest]
    return out.reshape(np.asarray(n_samples_leaf).shape)
