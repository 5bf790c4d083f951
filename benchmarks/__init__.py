"""asv benchmark suite of bregman_solvers (see asv.conf.json at the repository root)."""
