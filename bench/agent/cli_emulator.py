"""A switch CLI for OpenSSH's ``ForceCommand`` (``bench/agent/ssh.py --server openssh``): prompt, read a line,
print that command's pre-rendered output, prompt again, until ``exit`` or EOF. An exec request
(``SSH_ORIGINAL_COMMAND``) gets that command's output and exit status 0, or the invalid-input message and 1.

    python -I -S cli_emulator.py DIR     # DIR/cli.json: {"prompt": ..., "invalid": ..., "outputs": {command: text}}

sshd runs it in a PTY, so the terminal echoes each command and turns ``\\n`` into ``\\r\\n`` as on a real
device; this script only writes prompt and outputs. It imports nothing but ``json`` and ``os`` so that
200 sessions start quickly and stay small; the outputs are rendered once by the bench from the simulator.
"""

import json
import os
import sys


def main() -> None:
    with open(os.path.join(sys.argv[1], "cli.json")) as f:
        spec = json.load(f)
    prompt = spec["prompt"].encode()
    invalid = (spec["invalid"] + "\n").encode()
    outputs = {cmd: text.encode() for cmd, text in spec["outputs"].items()}
    exec_cmd = os.environ.get("SSH_ORIGINAL_COMMAND")  # an exec request: one command, no PTY, exit status
    if exec_cmd is not None:
        cmd = " ".join(exec_cmd.split())
        _write_all(outputs.get(cmd, invalid))
        sys.exit(0 if cmd in outputs else 1)
    _write_all(b"\n" + prompt)
    buf = b""
    while True:
        data = os.read(0, 65536)
        if not data:
            return
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            cmd = " ".join(line.decode(errors="replace").split())
            if cmd in ("exit", "quit", "logout"):
                return
            out = outputs.get(cmd, invalid) if cmd else b""
            _write_all(out + prompt)  # output and prompt in one write: the PTY and sshd decide the packets


def _write_all(data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(1, view):]


if __name__ == "__main__":
    main()
