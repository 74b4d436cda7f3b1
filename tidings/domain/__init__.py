"""Pure logic: no I/O, no framework imports, nothing of ours from outside ``domain``."""
