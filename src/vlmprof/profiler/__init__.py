"""The operator pass under torch.profiler and its analyses: operator tables, busy/idle timeline."""
