"""Topic clusters (TF-IDF + seeded k-means) and a split into train / held-out stratified by cluster."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..core.seeds import derive_int
from .filters import normalise

# The paper: 3,868 contested prompts split into 3,000 train and 868 held-out.
PAPER_HELD_OUT_FRACTION = 868 / 3868
MAX_DEFAULT_CLUSTERS = 20


def default_clusters(n: int) -> int:
    """round(sqrt(n / 2)) clamped to [1, 20]: 20 clusters at the paper's scale, a few for small runs."""
    return max(1, min(MAX_DEFAULT_CLUSTERS, round(math.sqrt(n / 2)))) if n else 0


def cluster_texts(texts: Sequence[str], k: int, seed: int, top_terms: int = 3) -> tuple[list[int], list[str]]:
    """Cluster ``texts`` into ``k`` topics; return each text's cluster and each cluster's label.

    TF-IDF (English stop words removed, sublinear tf; terms in >= 2 prompts once there are 100) reduced
    by LSA (truncated SVD to at most 100 dimensions, re-normalised; the usual scikit-learn text-clustering
    recipe, which avoids one giant catch-all cluster) + ``KMeans(n_init=10)``, all seeded from ``seed``.
    Clusters are renumbered by size (largest first, ties by first member) so ids are stable; a label is
    the cluster centroid's top terms joined by " / ".
    """
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(texts)
    if n == 0:
        return [], []
    k = max(1, min(k, n))
    try:
        vec = TfidfVectorizer(
            stop_words="english",
            sublinear_tf=True,
            min_df=2 if n >= 100 else 1,
            token_pattern=r"(?u)\b[a-zA-Z]\w+\b",
        )
        x = vec.fit_transform([normalise(t) for t in texts])
        terms = np.asarray(vec.get_feature_names_out())
    except ValueError:  # no usable terms at all
        return [0] * n, ["(no terms)"]
    if k == 1:
        raw = np.zeros(n, dtype=int)
    else:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.preprocessing import normalize

        dims = min(100, x.shape[1] - 1, n - 1)
        z = (
            normalize(TruncatedSVD(dims, random_state=derive_int(seed, "prompts.lsa")).fit_transform(x))
            if dims >= 2
            else x
        )
        km = KMeans(n_clusters=k, n_init=10, random_state=derive_int(seed, "prompts.cluster"))
        raw = km.fit_predict(z)
    # renumber by size, largest first
    ids = sorted(set(raw.tolist()), key=lambda c: (-int((raw == c).sum()), int(np.argmax(raw == c))))
    remap = {old: new for new, old in enumerate(ids)}
    labels_of = np.array([remap[c] for c in raw.tolist()])
    labels = []
    for c in range(len(ids)):
        centroid = np.asarray(x[labels_of == c].mean(axis=0)).ravel()
        order = [i for i in np.argsort(-centroid, kind="stable")[:top_terms] if centroid[i] > 0]
        labels.append(" / ".join(terms[order]) if order else "(no terms)")
    return labels_of.tolist(), labels


def held_out_counts(cluster_sizes: dict[int, int], fraction: float) -> dict[int, int]:
    """Held-out size per cluster: total = round(n * fraction), spread by largest remainder.

    Each cluster gets floor(size * fraction) and the remaining slots go to the largest fractional
    parts (ties: smaller cluster id), so every cluster is within one prompt of its exact share.
    """
    n = sum(cluster_sizes.values())
    total = int(round(n * fraction))
    exact = {c: s * fraction for c, s in cluster_sizes.items()}
    counts = {c: int(math.floor(e)) for c, e in exact.items()}
    rest = total - sum(counts.values())
    for c in sorted(exact, key=lambda c: (-(exact[c] - counts[c]), c))[: max(0, rest)]:
        counts[c] += 1
    return counts


def split_priority(seed: int, prompt_id: str) -> int:
    """A prompt's place in the held-out queue: a seeded hash of (seed, prompt id) alone; lower = held out first.

    It does not depend on any other prompt nor on the prompt's cluster, so it never changes when the set
    of prompts changes (``derive_int(seed, "prompts.split.priority", id)``, 62 bits).
    """
    return derive_int(seed, "prompts.split.priority", prompt_id, bits=62)


def stratified_split(
    ids: Sequence[str], clusters: Sequence[int], fraction: float, seed: int
) -> dict[str, str]:
    """``id -> "train" | "held_out"``, stratified by cluster and keyed per prompt.

    Each cluster's held-out allocation comes from ``held_out_counts`` (largest remainder); within the
    cluster the prompts with the lowest ``split_priority`` (ties: id) are held out. A prompt's side thus
    depends only on its own priority, its cluster's members and the allocation, not on input order.

    Stability (the property tests check): for two sets whose common prompts keep their cluster, in each
    cluster the number of common prompts that change side is at most
    ``|h - h'| + max(removed, added)`` where ``h``, ``h'`` are the cluster's two allocations and
    ``removed`` / ``added`` the prompts that left / joined it. All changes of one cluster go the same way.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError("held-out fraction must be in [0, 1)")
    by_cluster: dict[int, list[str]] = {}
    for pid, c in zip(ids, clusters):
        by_cluster.setdefault(int(c), []).append(pid)
    counts = held_out_counts({c: len(m) for c, m in by_cluster.items()}, fraction)
    out: dict[str, str] = {}
    for c, members in by_cluster.items():
        queue = sorted(members, key=lambda pid: (split_priority(seed, pid), pid))
        for i, pid in enumerate(queue):
            out[pid] = "held_out" if i < counts[c] else "train"
    return out


def side_changes_bound(before: dict[str, int], after: dict[str, int], fraction: float) -> dict[int, int]:
    """Per cluster, the most common prompts that may change side between two sets (see ``stratified_split``).

    ``before`` / ``after``: prompt id -> cluster of each set. Prompts whose cluster differs count as
    removed from the old cluster and added to the new one.
    """
    sizes_b: dict[int, int] = {}
    sizes_a: dict[int, int] = {}
    for c in before.values():
        sizes_b[c] = sizes_b.get(c, 0) + 1
    for c in after.values():
        sizes_a[c] = sizes_a.get(c, 0) + 1
    hb, ha = held_out_counts(sizes_b, fraction), held_out_counts(sizes_a, fraction)
    out = {}
    for c in set(sizes_b) | set(sizes_a):
        removed = sum(1 for pid, cl in before.items() if cl == c and after.get(pid) != c)
        added = sum(1 for pid, cl in after.items() if cl == c and before.get(pid) != c)
        out[c] = abs(hb.get(c, 0) - ha.get(c, 0)) + max(removed, added)
    return out
