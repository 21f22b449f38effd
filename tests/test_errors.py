"""The exception hierarchy: one module, every class exported, old import paths kept,
and errors that escaped it (EMFILE, a missing file described as moved) now inside it."""

import inspect
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import proxylib
from proxylib import errors


def _error_classes():
    return [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
            if issubclass(obj, (Exception, Warning)) and obj.__module__ == errors.__name__]


def test_every_exception_class_is_defined_in_errors_py():
    """No module of the package defines its own exception or warning class."""
    import importlib
    import pkgutil
    offenders = []
    for info in pkgutil.walk_packages(proxylib.__path__, "proxylib."):
        if info.name in ("proxylib.__main__", errors.__name__):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, (BaseException, Warning)) and obj.__module__ == module.__name__:
                offenders.append(f"{module.__name__}.{obj.__name__}")
    assert offenders == []


def test_every_error_class_is_exported_from_proxylib():
    for cls in _error_classes():
        assert getattr(proxylib, cls.__name__) is cls
        assert cls.__name__ in proxylib.__all__


@pytest.mark.parametrize("module, name", [
    ("proxylib.io.opening", "MissingFileError"),
    ("proxylib.io.opening", "FileAccessError"),
    ("proxylib.images", "ImageFileError"),
    ("proxylib.cli.keys", "KeySyntaxError"),
    ("proxylib.io.gzip.index_cache", "DamagedIndexError"),
    ("proxylib.io.gzip.index_cache", "IndexCacheWarning"),
])
def test_old_import_paths_still_work(module, name):
    import importlib
    assert getattr(importlib.import_module(module), name) is getattr(proxylib, name)


def test_every_error_is_a_proxy_error():
    for cls in _error_classes():
        if issubclass(cls, Warning):
            continue
        assert issubclass(cls, proxylib.ProxyError), cls


def test_key_syntax_and_image_file_errors_keep_their_builtin_bases():
    assert issubclass(proxylib.KeySyntaxError, ValueError)
    assert issubclass(proxylib.ImageFileError, ValueError)
    assert issubclass(proxylib.DamagedIndexError, ValueError)
    assert issubclass(proxylib.MissingFileError, FileNotFoundError)
    assert issubclass(proxylib.FileAccessError, PermissionError)
    with pytest.raises(proxylib.KeySyntaxError):
        from proxylib.cli.keys import parse_key
        parse_key("1.5")


def test_a_file_that_never_existed_is_not_called_moved(tmp_path):
    path = str(tmp_path / "never.nii")
    with pytest.raises(proxylib.MissingFileError) as info:
        proxylib.load(path)
    assert "moved" not in str(info.value) and "no such file" in str(info.value)
    proxy = proxylib.ArrayProxy(path, ((2, 3), np.uint8))
    with pytest.raises(proxylib.MissingFileError) as info:
        proxy[0]
    assert "moved" not in str(info.value) and "no such file" in str(info.value)
    assert path in str(info.value)


@pytest.mark.parametrize("keep", [False, True])
def test_a_file_deleted_after_opening_is_said_to_have_disappeared(tmp_path, keep):
    path = tmp_path / "gone.nii"
    proxylib.save(proxylib.Nifti1Image(np.arange(24, dtype="i2").reshape(2, 3, 4), np.eye(4)),
                  str(path))
    img = proxylib.load(str(path), keep_file_open=False)
    os.unlink(path)
    with pytest.raises(proxylib.MissingFileError) as info:
        img.dataobj[0]
    assert "disappeared since it was opened" in str(info.value)
    assert info.value.errno is not None


def test_emfile_at_load_is_a_proxylib_error(tmp_path):
    """With no descriptors left, load raises TooManyOpenFilesError naming the file."""
    path = tmp_path / "a.nii"
    proxylib.save(proxylib.Nifti1Image(np.zeros((2, 3, 4), "f4"), np.eye(4)), str(path))
    child = textwrap.dedent(f"""
        import resource, sys
        import proxylib
        path = {str(path)!r}
        proxylib.load(path)  # a running process: every module is imported already
        keep = []
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
        try:
            while True:
                keep.append(open(path, "rb"))
        except OSError:
            pass
        try:
            proxylib.load(path)
        except proxylib.TooManyOpenFilesError as err:
            assert path in str(err) and "ulimit" in str(err), err
            print("OK", type(err).__mro__[1].__name__)
        except BaseException as err:
            print("WRONG", type(err).__name__, err)
        else:
            print("LOADED")
    """)
    result = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True,
                            timeout=120, cwd=os.getcwd())
    assert result.stdout.strip() == "OK ProxyReadError", result.stdout + result.stderr
