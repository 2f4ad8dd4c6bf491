"""Run a command as if this CPU had no AMX: ``python benchmarks/noamx.py CMD [ARGS...]``.

Linux hands out AMX only to processes that ask for it (``arch_prctl(ARCH_REQ_XCOMP_PERM)``), and both
torch's oneDNN and onnxruntime's MLAS ask before they pick an AMX kernel. This wrapper installs a
seccomp filter that refuses that request (EPERM) and then runs the command, so every library in it,
and every child process, falls back to its AVX-512 kernels (bf16 and VNNI stay available), as on an AMD
Zen 4. ``ONEDNN_MAX_CPU_ISA`` caps only torch; onnxruntime ignores it, so it cannot stand in for a
CPU without AMX on its own.

``python benchmarks/noamx.py --check`` prints whether the kernel refuses the request under the filter. Benchmark
stamps (``benchmarks/common.py``) and painterly's cached speed decisions record the refusal
(:func:`painterly.cpuinfo.kernel_limits`). Example::

    python benchmarks/noamx.py python benchmarks/bench_deploy.py --name deploy_noamx
"""

from __future__ import annotations

import ctypes
import os
import sys

ARCH_REQ_XCOMP_PERM = 0x1023
SYS_ARCH_PRCTL = 158  # x86-64
AUDIT_ARCH_X86_64 = 0xC000003E
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1

# BPF opcodes
LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
RET_K = 0x06  # BPF_RET | BPF_K


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def install_filter() -> None:
    """Refuse ``arch_prctl(ARCH_REQ_XCOMP_PERM, ...)`` in this process and all it runs."""
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        raise SystemExit("noamx: only for Linux on x86-64")
    prog = [
        SockFilter(LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        SockFilter(JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        SockFilter(RET_K, 0, 0, SECCOMP_RET_ALLOW),
        SockFilter(LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        SockFilter(JEQ_K, 0, 3, SYS_ARCH_PRCTL),
        SockFilter(LD_W_ABS, 0, 0, 16),  # low word of args[0]
        SockFilter(JEQ_K, 0, 1, ARCH_REQ_XCOMP_PERM),
        SockFilter(RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),
        SockFilter(RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
    arr = (SockFilter * len(prog))(*prog)
    fprog = SockFprog(len(prog), arr)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise SystemExit(f"noamx: prctl(NO_NEW_PRIVS) failed: {os.strerror(ctypes.get_errno())}")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise SystemExit(f"noamx: seccomp filter refused: {os.strerror(ctypes.get_errno())}")


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    if argv == ["--check"]:
        install_filter()
        check = "from painterly.cpuinfo import amx_granted; print('under the filter, AMX granted:', amx_granted())"
        os.execvp(sys.executable, [sys.executable, "-c", check])
    install_filter()
    os.execvp(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
