"""Bridges to other libraries; each module imports its library, so import them on use.

* :mod:`.nibabel` - proxylib images as nibabel images and back, header conversion;
* :mod:`.xarray_backend` - the ``engine='proxylib'`` backend for ``xarray.open_dataarray``.
"""
