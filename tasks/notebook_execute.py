"""Executes a notebook headless with nbclient's NotebookClient, as `jupyter nbconvert --execute`
does, and writes the executed copy.

Usage: /usr/bin/python3 execute.py NOTEBOOK OUT --cwd DIR [--kernel deno] [--timeout S]

Prints one JSON line: the messages that arrived for a cell other than the one being run
("stray"). Such a message is an output its cell published only after the kernel had reported
the cell finished: nbclient, like every client that stops listening at idle, drops it. Nothing
here waits after a cell (the kit makes each cell end only once its outputs are published,
lib/display/outputs.ts); the client only watches the messages it reads anyway. One extra
cell, executed after the last and left out of the written notebook, lets a late output of
the last cell show up too.
"""
import argparse
import json
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.util import ensure_async

PROBE_SOURCE = "0 // probe: reads what the last cell may still send"


class WatchingClient(NotebookClient):
    """nbclient, unchanged, that records messages belonging to an earlier cell."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.stray = []
        self.requests = {}  # execute request msg_id -> cell index
        self.current = None

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        get_msg = kc.iopub_channel.get_msg
        execute = kc.execute

        async def watched_get_msg(*args, **kwargs):
            msg = await ensure_async(get_msg(*args, **kwargs))
            parent = msg["parent_header"].get("msg_id")
            late = parent in self.requests and parent != self.current
            if late and msg["msg_type"] not in ("status", "execute_input"):
                self.stray.append({"cell": self.requests[parent], "msg_type": msg["msg_type"]})
            return msg

        def watched_execute(code, *args, **kwargs):
            msg_id = execute(code, *args, **kwargs)
            self.current = msg_id
            self.requests[msg_id] = self.cell_index
            return msg_id

        kc.iopub_channel.get_msg = watched_get_msg
        kc.execute = watched_execute
        return kc

    async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
        self.cell_index = cell_index
        return await super().async_execute_cell(cell, cell_index, *args, **kwargs)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("notebook")
    parser.add_argument("out")
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--kernel", default="deno")
    parser.add_argument("--timeout", type=int, default=600)
    args = parser.parse_args()

    nb = nbformat.read(args.notebook, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE_SOURCE))
    client = WatchingClient(
        nb,
        kernel_name=args.kernel,
        timeout=args.timeout,
        allow_errors=True,
        resources={"metadata": {"path": args.cwd}},
    )
    try:
        client.execute()
    finally:
        if nb.cells and nb.cells[-1].source == PROBE_SOURCE:
            nb.cells.pop()
        nbformat.write(nb, args.out)
        print(json.dumps({"stray": client.stray}))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
