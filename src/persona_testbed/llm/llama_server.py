"""Run llama-cpp-python's OpenAI-compatible server with the same llama.cpp workarounds as ``embedded``.

``python -m persona_testbed.llm.llama_server --model <file.gguf> --host 127.0.0.1 --port 8000`` is exactly
``python -m llama_cpp.server ...`` (same arguments, same app), except that weights load without llama.cpp's
extra buffer types and OpenMP threads wait passively (see ``backends/llamacpp.py`` for why).
"""

from __future__ import annotations

import os
import runpy
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> None:
    from .backends.llamacpp import model_params_without_extra_bufts

    with model_params_without_extra_bufts():
        sys.argv[0] = "llama_cpp.server"
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
