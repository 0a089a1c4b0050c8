"""The durable engine: strata lowered to durable_rules (``lowering``), matched on its C core
(``driver``) by :class:`~dealdesk.engines.durable.engine.DurableEngine`.

Only ``driver`` (and so ``engine``) imports durable_rules, which does not import on Python
3.13; ``lowering`` is pure Python.
"""
