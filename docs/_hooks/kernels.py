"""mkdocs hook: notebook kernels talk to the build over encrypted sockets.

jupyter_client starts kernels over TCP with ``transport_encryption="disabled"`` by default,
and every kernel then logs "Kernel is running over TCP without encryption" (once per
notebook). The kernelspec ipykernel installs declares CurveZMQ support, so ``"auto"`` gives
each kernel keys of its own: the traffic is encrypted and the kernel has nothing to warn
about. ``notebooks/conftest.py`` does the same for ``pytest --nbmake``.
"""

from __future__ import annotations

import zmq
from jupyter_client.manager import KernelManager

if zmq.has("curve"):  # without libsodium, keep jupyter's default (and its warning)
    KernelManager.class_traits()["transport_encryption"].default_value = "auto"
