"""Reusable checks for proxylib and for readers that embed ArrayProxy.

``strategies`` holds hypothesis strategies (specs, basic keys, sources) and
``fancy_strategies`` those for advanced and ``oindex`` keys;
``oracle`` computes what numpy says a read must return;
``conformance`` runs one spec + key over every byte source and policy.
hypothesis is needed only by ``strategies``.
"""
