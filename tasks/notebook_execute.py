"""Executes a notebook headless with nbclient and writes the executed copy.

Usage: /usr/bin/python3 notebook_execute.py NOTEBOOK OUT --cwd DIR [--kernel deno] [--timeout S] [--grace S]

Prints one JSON line: per code cell, how many of its messages arrived only after the kernel
reported it idle ("late"), and how many messages belonged to no cell being run ("stray").

Why the draining: Deno's kernel can report a cell idle before its last outputs are sent.
nbclient stops listening for a cell at idle and then ignores messages that name an earlier
cell, so those outputs vanish without a trace. Here each cell keeps listening until the
kernel has been quiet for GRACE seconds after idle, and late messages are counted so a test
can see the race instead of silently losing an output.
"""
import argparse
import asyncio
import json
import sys
from queue import Empty

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionComplete
from nbclient.util import ensure_async


class DrainingClient(NotebookClient):
    """nbclient that keeps a cell's outputs arriving shortly after its idle status."""

    grace = 0.5

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.late = {}
        self.stray = []

    async def _async_poll_output_msg(self, parent_msg_id, cell, cell_index):
        idle_seen = False
        while True:
            try:
                timeout = self.grace if idle_seen else None
                msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=timeout))
            except Empty:
                return
            if msg["parent_header"].get("msg_id") != parent_msg_id:
                if msg["msg_type"] != "status":
                    self.stray.append({"cell": cell_index, "msg_type": msg["msg_type"]})
                continue
            if idle_seen:
                self.late[cell_index] = self.late.get(cell_index, 0) + 1
            try:
                self.process_message(msg, cell, cell_index)
            except CellExecutionComplete:
                idle_seen = True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("notebook")
    parser.add_argument("out")
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--kernel", default="deno")
    parser.add_argument("--timeout", type=int, default=600)
    parser.add_argument("--grace", type=float, default=0.5)
    args = parser.parse_args()

    nb = nbformat.read(args.notebook, as_version=4)
    client = DrainingClient(
        nb,
        kernel_name=args.kernel,
        timeout=args.timeout,
        iopub_timeout=max(10, int(args.grace * 4)),
        raise_on_iopub_timeout=True,
        allow_errors=True,
        resources={"metadata": {"path": args.cwd}},
    )
    client.grace = args.grace
    try:
        client.execute()
    finally:
        nbformat.write(nb, args.out)
        summary = {
            "late": {str(k): v for k, v in sorted(client.late.items())},
            "stray": client.stray,
        }
        print(json.dumps(summary))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
