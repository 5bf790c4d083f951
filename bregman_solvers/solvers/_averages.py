"""Eq. 23's averages of parameter vectors, written once for model averaging and the Dask rounds:
:class:`ParameterAverage` (a weighted float64 sum), :func:`pairwise` (the fixed binary tree in which
partial sums are added: neighbours first) and :class:`OrderedTreeSum` (that tree over an epoch's
batches fed as they finish, holding a few partial sums instead of a vector per batch)."""
import threading

import numpy as np

__all__ = ["ParameterAverage", "pairwise", "OrderedTreeSum"]


class ParameterAverage:
    """Eq. 23's average of parameter vectors, ``sum_b w_b theta_b / sum_b w_b``, accumulated in
    float64 in the order the vectors are added (so a fixed order gives reproducible bits).

    The one place the average is formed: :class:`~bregman_solvers.ModelAveraging` over its
    batches (in the tree of :class:`OrderedTreeSum`), a Dask shard over the batches of a round,
    and the Dask workers over the shards (in the tree of :func:`pairwise`).
    """

    def __init__(self, size):
        self.total = np.zeros(size, np.float64)
        self.weight = 0.0

    def add(self, theta, weight=1.0):
        if weight == 1:
            self.total += theta                 # cast entry by entry: no float64 copy of theta
            self.weight += 1.0
        elif weight:
            self.total += float(weight) * np.asarray(theta, dtype=np.float64)
            self.weight += float(weight)
        return self

    def absorb(self, other):
        """Add the partial average ``other`` into this one (its float64 sum and weight), in place."""
        self.total += other.total
        self.weight += other.weight
        return self

    @classmethod
    def merged(cls, a, b):
        """The partial averages ``a`` and ``b`` as one, a new object (the same additions as
        :meth:`absorb`): the Dask driver's tree of shards adds them in pairs on the workers, whose
        inputs stay as they are."""
        out = cls.__new__(cls)
        out.total, out.weight = a.total.copy(), a.weight
        return out.absorb(b)

    def mean(self, out=None):
        """The average (into ``out`` when given, cast to its dtype); None when nothing was added."""
        if self.weight == 0:
            return None
        if out is None:
            return self.total / self.weight
        np.copyto(out, self.total / self.weight, casting="same_kind")
        return out


def pairwise(items, combine):
    """Reduce ``items`` (at least one) with ``combine(a, b)`` in a fixed binary tree: neighbours
    first, ``(((0, 1), (2, 3)), (4, 5))`` for six; an odd one out moves up a level unchanged."""
    items = list(items)
    if not items:
        raise ValueError("pairwise needs at least one item")
    while len(items) > 1:
        items = [combine(items[i], items[i + 1]) if i + 1 < len(items) else items[i]
                 for i in range(0, len(items), 2)]
    return items[0]


class OrderedTreeSum:
    """The :func:`pairwise` tree of :class:`ParameterAverage` sums over vectors indexed 0, 1, 2, ...,
    fed in any order (the batches of an epoch as the workers finish them; thread-safe).

    A vector is added to the tree when every one before it has been (one ahead of its turn waits,
    as a float64 copy); the tree is a binary counter, one partial sum per level (two sums of 2^l
    vectors become one of 2^(l+1)), and :meth:`total` adds the levels right to left, which is
    exactly :func:`pairwise` over the vectors in index order. So the sum does not depend on the
    order the vectors arrive in, and an epoch of B batches holds about log2(B) partial sums, not
    B parameter vectors.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._next = 0
        self._ahead = {}
        self._levels = []                # (number of vectors, their partial sum), largest first

    def add(self, index, theta, weight=1.0):
        leaf = ParameterAverage(np.size(theta)).add(theta, weight)     # a float64 copy of theta
        with self._lock:
            if index < self._next or index in self._ahead:
                raise ValueError(f"vector {index} was added already")
            self._ahead[index] = leaf
            while self._next in self._ahead:
                self._push(self._ahead.pop(self._next))
                self._next += 1

    def _push(self, partial):
        count = 1
        while self._levels and self._levels[-1][0] == count:
            # left + right, as merged adds them, into the tree's own sum
            partial, count = self._levels.pop()[1].absorb(partial), count * 2
        self._levels.append((count, partial))

    def total(self):
        """The sum of every vector added (a :class:`ParameterAverage`); raises when one is missing."""
        with self._lock:
            if self._ahead:
                raise ValueError(f"vectors {sorted(self._ahead)} wait for vector {self._next}")
            if not self._levels:
                raise ValueError("no vector was added")
            partial = self._levels[-1][1]
            for _, left in reversed(self._levels[:-1]):
                partial = ParameterAverage.merged(left, partial)
            return partial
