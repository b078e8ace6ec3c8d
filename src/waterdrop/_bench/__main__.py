"""``python -m waterdrop._bench ROLE ...``: one child role by hand (``host`` runs the MockCluster
host, like bench/mockcluster_host.py; ``inflight``, ``flat`` and ``path`` print one JSON line)."""

import sys

from .children import child_main

sys.exit(child_main(sys.argv[1:]))
