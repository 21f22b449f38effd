"""Driver of the subprocess fault matrix (tests/test_fault_matrix.py).

Run as ``python fault_matrix_child.py CELLS.json``. The driver imports
proxylib once, then forks one child per cell; each child

1. drops root privileges to ``nobody`` when it can (so ``chmod 000`` means
   something), loads its file with the cell's ``mmap`` / ``keep_file_open``,
   reads it once (full read and a few keys) and checks the values,
2. applies the fault (truncate, delete, chmod 000, replace with other
   content, or rewrite in place),
3. reads again (full read, a volume, a time series, a slab, get_fdata) and
   records for each read either the proxylib error (type and message) or
   whether the data equal the original values,

and writes one JSON record. The driver waits for each child and adds how it
ended (exit code or signal), then prints all records as one JSON list. A
SIGBUS/SIGSEGV in a cell is therefore a signal in the record, not a dead test
runner.
"""

from __future__ import annotations

import gc
import gzip
import json
import os
import signal
import sys
import traceback

import numpy as np

import proxylib

SHAPE = (16, 16, 8, 10)          # 40 KiB of int16: ten pages, so a truncation cuts pages off
KEYS = {
    "volume": (Ellipsis, 3),
    "series": (5, 6, 2, slice(None)),
    "slab": (slice(None), 3, slice(None), slice(2, 5)),
}


def original() -> np.ndarray:
    return (np.arange(np.prod(SHAPE), dtype=np.int64) % 30011 - 15000).astype(
        np.int16).reshape(SHAPE, order="F")


def write_image(path: str, data: np.ndarray) -> None:
    header = proxylib.Nifti1Header()
    header.set_data_dtype(np.int16)
    header.set_data_shape(data.shape)
    header.set_data_offset(header.single_vox_offset)
    header.set_slope_inter(1.0, 0.0)  # unscaled: full reads of .nii come back as np.memmap
    raw = header.binaryblock + b"\x00" * 4 + data.tobytes(order="F")
    if path.endswith(".gz"):
        raw = gzip.compress(raw, compresslevel=1, mtime=0)
    with open(path, "wb") as handle:
        handle.write(raw)


def drop_privileges() -> int:
    """Become ``nobody`` when running as root; return the effective uid."""
    if os.geteuid() == 0:
        import pwd
        try:
            nobody = pwd.getpwnam("nobody")
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
        except (KeyError, OSError):
            pass
    return os.geteuid()


def apply_fault(fault: str, path: str, other: str) -> None:
    if fault == "truncate":
        os.truncate(path, os.stat(path).st_size // 2)
    elif fault == "delete":
        os.unlink(path)
    elif fault == "chmod":
        os.chmod(path, 0)
    elif fault == "replace":  # another image, same shape and size, new inode
        os.replace(other, path)
    elif fault == "rewrite":  # same inode and size, other content, new mtime
        with open(other, "rb") as source:
            content = source.read()
        st = os.stat(path)
        with open(path, "r+b") as target:
            target.write(content[:st.st_size])
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    else:
        raise ValueError(fault)


def _outcome(read, expected: np.ndarray) -> dict:
    try:
        value = read()
        kind = type(value).__name__
        same = bool(np.array_equal(np.asarray(value), expected))
        del value
        gc.collect()
        return {"result": "data", "correct": same, "type": kind}
    except proxylib.ProxyError as err:
        return {"result": "error", "type": type(err).__name__, "message": str(err)[:300],
                "mro": [c.__name__ for c in type(err).__mro__]}
    except BaseException as err:  # noqa: BLE001 - recorded and failed by the test
        return {"result": "foreign", "type": type(err).__name__, "message": str(err)[:300],
                "trace": traceback.format_exc()[-1500:]}


def run_cell(cell: dict) -> dict:
    record = {"cell": cell, "euid": drop_privileges(), "before": {}, "after": {}}
    data = original()
    img = proxylib.load(cell["path"], mmap=cell["mmap"], keep_file_open=cell["keep"])
    proxy = img.dataobj
    full = np.asanyarray(proxy)
    record["full_type"] = type(full).__name__
    record["before"]["full"] = bool(np.array_equal(full, data))
    del full  # the matrix never touches a memmap after the fault (see the SIGBUS test)
    gc.collect()
    for name, key in KEYS.items():
        record["before"][name] = bool(np.array_equal(proxy[key], data[key]))
    apply_fault(cell["fault"], cell["path"], cell["other"])
    record["after"]["full"] = _outcome(lambda: np.asanyarray(proxy), data)
    for name, key in KEYS.items():
        record["after"][name] = _outcome(lambda key=key: proxy[key], data[key])
    record["after"]["fdata"] = _outcome(lambda: img.get_fdata(caching="unchanged"),
                                        data.astype(np.float64))
    proxy.close()
    return record


def warm_up(folder: str) -> None:
    """Run every code path once before forking, so no child imports a module.

    A child that dropped to ``nobody`` may not be able to read the Python
    installation (under /root, say); lazy imports must have happened already.
    """
    for suffix in (".nii", ".nii.gz"):
        path = os.path.join(folder, "warm" + suffix)
        write_image(path, original())
        for mmap in ("c", "r", False):
            for keep in (True, False):
                img = proxylib.load(path, mmap=mmap, keep_file_open=keep)
                np.asarray(img.dataobj)
                for key in KEYS.values():
                    img.dataobj[key]
                img.get_fdata(caching="unchanged")
                img.dataobj.close()
        os.truncate(path, 1000)
        for keep in (True, False):
            try:
                np.asarray(proxylib.load(path, keep_file_open=keep).dataobj)
            except proxylib.ProxyError:
                pass
        os.unlink(path)


def main() -> None:
    with open(sys.argv[1]) as handle:
        cells = json.load(handle)
    warm_up(os.path.dirname(os.path.abspath(sys.argv[1])))
    records = []
    for cell in cells:
        result_path = cell["path"] + ".result.json"
        pid = os.fork()
        if pid == 0:  # the cell
            code = 0
            try:
                record = run_cell(cell)
            except BaseException:  # noqa: BLE001
                record = {"cell": cell, "crash": traceback.format_exc()[-2000:]}
                code = 3
            try:
                with open(result_path, "w") as out:
                    json.dump(record, out)
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        try:
            with open(result_path) as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            record = {"cell": cell, "crash": "no result written"}
        if os.WIFSIGNALED(status):
            record["signal"] = signal.Signals(os.WTERMSIG(status)).name
        record["exit"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        records.append(record)
    print(json.dumps(records))


if __name__ == "__main__":
    main()
