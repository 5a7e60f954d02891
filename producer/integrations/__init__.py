"""Integrations of the producer with proxy-rotation libraries (optional extras).

:mod:`producer.integrations.proxywhirl`
    Instrument a ``proxywhirl.ProxyWhirl`` or ``AsyncProxyWhirl`` instance in one call
    (extra ``proxywhirl-metrics[proxywhirl]``). Imported on demand: importing this package
    does not import ProxyWhirl.

Errors are listed in :mod:`producer.integrations.errors`.
"""
