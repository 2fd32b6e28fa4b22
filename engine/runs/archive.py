"""archive.zip: written deterministically, unpacked defensively.

The same files give the same bytes, twice: entries are sorted, timestamps and permissions are
fixed, and deflate uses one fixed level. Unpacking refuses absolute paths, `..`, links and
anything that would inflate past a size cap, so a hostile archive cannot write outside its
folder or fill the disk.
"""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path, PurePosixPath

from ledger.errors import UserError

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = (stat.S_IFREG | 0o644) << 16
DEFAULT_UNPACK_CAP = 8 << 30  # 8 GiB


def write_archive(path: Path, files: dict[str, Path], compression: str = "stored") -> int:
    """Write `files` ({name in archive: file on disk}) to a deterministic zip; returns its size."""
    method = zipfile.ZIP_DEFLATED if compression == "deflated" else zipfile.ZIP_STORED
    partial = path.with_name(path.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            for name in sorted(files):
                info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
                info.compress_type = method
                info.external_attr = _FILE_MODE
                info.create_system = 3  # unix, whatever the host
                with open(files[name], "rb") as src, archive.open(info, "w") as dst:
                    while block := src.read(1 << 20):
                        dst.write(block)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(path)
    return path.stat().st_size


def _safe_member(info: zipfile.ZipInfo, archive: Path) -> PurePosixPath:
    name = PurePosixPath(info.filename)
    if name.is_absolute() or info.filename.startswith(("/", "\\")) or ":" in name.parts[0]:
        raise UserError(f"{archive} holds an absolute path {info.filename!r}: archives must use relative names")
    if ".." in name.parts:
        raise UserError(f"{archive} holds {info.filename!r}, which escapes its folder: remove '..' from names")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise UserError(f"{archive} holds a link {info.filename!r}: store the file itself, not a link")
    return name


def unpack_archive(archive: Path, dest: Path, cap_bytes: int = DEFAULT_UNPACK_CAP) -> list[Path]:
    """Unpack `archive` into `dest` safely; returns the files written."""
    if not archive.is_file():
        raise UserError(f"archive {archive} not found: a submission needs archive.zip (or a compress.sh)")
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile as exc:
        raise UserError(f"{archive} is not a zip file ({exc}): rebuild the archive") from None
    written: list[Path] = []
    with zf:
        members = zf.infolist()
        names = [_safe_member(info, archive) for info in members]
        total = sum(info.file_size for info in members)
        if total > cap_bytes:
            raise UserError(
                f"{archive} would unpack to {total:,} bytes, over the {cap_bytes:,}-byte cap: "
                "this is not a plausible submission"
            )
        dest.mkdir(parents=True, exist_ok=True)
        for info, name in zip(members, names, strict=True):
            target = dest.joinpath(*name.parts)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            remaining = info.file_size
            with zf.open(info) as src, open(target, "wb") as dst:
                # Count what really comes out, not what the header claims.
                while block := src.read(1 << 20):
                    remaining -= len(block)
                    if remaining < 0:
                        raise UserError(f"{archive}: {info.filename} inflates past its declared size")
                    dst.write(block)
            written.append(target)
    return written
