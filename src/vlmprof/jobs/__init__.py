"""One function per workflow rule: what a job reads, the library calls it makes, what it writes.

The top layer of the library: a module per step file of the workflow (`dataset`, `static`,
`profile`, `gate`, `aggregate`, `report`, `docs`), each function named after its rule and
taking the rule's inputs and outputs as paths and its params as keyword arguments of the
same names. Nothing else in vlmprof imports this package. The steps that run no model
(`dataset`, `aggregate`, `report`, `docs`) import no torch.
"""
