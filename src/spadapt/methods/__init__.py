"""The `METHODS` registry: what an adapter adds. A new method is one file plus one line here.

- `bottleneck.py`: down → act → up adapters (Pfeiffer, Houlsby, parallel), prunable.
- `sparse_delta.py`: trainable values at chosen positions of frozen linear weights.
- `head.py`: per-adapter copies of task heads.
- `routing.py`: which adapter each row of a batch uses.
"""

from ..names import BASE_NAME
from .base import Method, SitePlan, SiteWrapper, StoredTensor
from .bottleneck import BOTTLENECK, BottleneckAdapter, BottleneckSite
from .head import HeadCopy, HeadSite
from .routing import Routing
from .sparse_delta import SPARSE_DELTA, SparseDelta, SparseDeltaSite

METHODS: dict[str, Method] = {
    "bottleneck": BOTTLENECK,
    "sparse_delta": SPARSE_DELTA,
}

__all__ = [
    "BASE_NAME",
    "METHODS",
    "BottleneckAdapter",
    "BottleneckSite",
    "HeadCopy",
    "HeadSite",
    "Method",
    "Routing",
    "SitePlan",
    "SiteWrapper",
    "SparseDelta",
    "SparseDeltaSite",
    "StoredTensor",
]
