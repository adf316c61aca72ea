"""Data files: checksums and verified, atomic downloads."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import secrets
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

__all__ = ["DataError", "fetch", "sha256_file", "verify"]

TIMEOUT = 60.0
_CHUNK = 1 << 20


class DataError(ValueError):
    """A data file is missing from every mirror, corrupted, truncated or malformed."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Returns the hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify(path: str | os.PathLike[str], sha256: str) -> None:
    """Raises ``DataError`` unless the file at ``path`` has the given sha256."""
    actual = sha256_file(path)
    if actual != sha256:
        raise DataError(
            f"{path}: checksum mismatch: sha256 is {actual}, expected {sha256} "
            "(corrupted or a different file; delete it to download it again)"
        )


def fetch(
    urls: Sequence[str],
    dest: str | os.PathLike[str],
    sha256: str,
    *,
    progress: bool | None = None,
    timeout: float = TIMEOUT,
) -> None:
    """Downloads the first of ``urls`` that serves a file with the given sha256 to ``dest``.

    Each download streams to a temporary file in ``dest``'s directory, is checked for length
    (against Content-Length) and sha256, fsynced, then renamed onto ``dest``; a failed or
    interrupted attempt leaves nothing behind.

    Args:
        urls: candidate URLs for the same file, tried in order.
        dest: destination path; its directory is created if needed.
        sha256: the expected hex sha256 of the file.
        progress: show a tqdm progress bar; ``None`` shows one when stderr is a terminal.
        timeout: seconds to wait for a connection or for data on it.

    Raises:
        DataError: every URL failed; the message lists each URL with its error.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    show = sys.stderr.isatty() if progress is None else progress
    failures = []
    for url in urls:
        try:
            _download(url, dest, sha256, show, timeout)
            return
        except (OSError, ValueError, http.client.HTTPException) as e:
            failures.append(f"{url}: {e}")
    raise DataError(f"{dest}: could not download it from any mirror:\n  " + "\n  ".join(failures))


def _download(url: str, dest: Path, sha256: str, show: bool, timeout: float) -> None:
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(8)}.part")
    request = urllib.request.Request(url, headers={"User-Agent": "funcnets"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        raise
    try:
        with (
            response,
            open(tmp, "xb") as f,
            tqdm(
                total=response.length,
                unit="B",
                unit_scale=True,
                desc=dest.name,
                disable=not show,
                leave=False,
            ) as bar,
        ):
            digest, size = hashlib.sha256(), 0
            while chunk := response.read(_CHUNK):
                f.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                bar.update(len(chunk))
            if response.length:
                raise DataError(
                    f"truncated download: expected {size + response.length} bytes, got {size}"
                )
            if digest.hexdigest() != sha256:
                raise DataError(
                    f"checksum mismatch: sha256 is {digest.hexdigest()}, expected {sha256}"
                )
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
