"""Run every Python example of one documentation page against a fresh MockCluster.

Usage: python tests/docs/run_page.py PAGE (relative to the repository root). Prints one line
``DOCS-TEST-RESULT {json}`` at the end: counts, and the first failure with its page line.
Conventions: see examples.py.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import os
import sys
import traceback
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from examples import Example, page_examples, prelude_path  # noqa: E402

BROKER = "localhost:9092"


def _fake_app(bootstrap: str) -> None:
    """``myapp.kafka.MY_PRODUCER``: the application's producer the framework examples import."""
    from waterdrop import Producer

    package = types.ModuleType("myapp")
    package.__path__ = []  # a package, so examples may add their own submodules
    kafka = types.ModuleType("myapp.kafka")
    kafka.MY_PRODUCER = Producer(kafka={"bootstrap.servers": bootstrap})
    package.kafka = kafka
    sys.modules["myapp"] = package
    sys.modules["myapp.kafka"] = kafka


def main(page: str) -> int:
    from waterdrop.testing import MockCluster

    result = {"page": page, "run": 0, "hidden": 0, "skipped": [], "failure": None}
    examples = page_examples(page)
    with MockCluster(brokers=3) as cluster:
        os.environ["WATERDROP_DOCS_BOOTSTRAP_SERVERS"] = cluster.bootstrap_servers
        _fake_app(cluster.bootstrap_servers)
        module = types.ModuleType("__main__")
        module.__file__ = page
        sys.modules["__main__"] = module  # so multiprocessing and pickle find example functions
        namespace = module.__dict__
        namespace["docs_mock_cluster"] = cluster  # for hidden blocks that inject faults
        # for hidden blocks that ran a shutdown hook and need the application's producer again
        namespace["docs_new_app_producer"] = lambda: _fake_app(cluster.bootstrap_servers)
        prelude = prelude_path(page)
        if prelude.is_file():
            examples = [Example(page, 1, "hidden", prelude.read_text(encoding="utf-8"))] + examples
        try:
            for example in examples:
                if example.kind == "skip":
                    result["skipped"].append(f"{page}:{example.line}: {example.reason}")
                    continue
                print(f"DOCS-TEST-BLOCK {page}:{example.line} (pid {os.getpid()})", file=sys.stderr, flush=True)
                source = example.source.replace(BROKER, cluster.bootstrap_servers)
                # line numbers in tracebacks point into the page
                source = "\n" * (example.line - 1) + source
                try:
                    code = compile(source, page, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                    if code.co_flags & inspect.CO_COROUTINE:
                        asyncio.run(eval(code, namespace))  # a block using top-level await
                    else:
                        exec(code, namespace)
                except BaseException as error:  # noqa: BLE001 - SystemExit too is a failure
                    result["failure"] = {
                        "line": example.line,
                        "kind": example.kind,
                        "error": "".join(traceback.format_exception(error)),
                    }
                    break
                result["hidden" if example.kind == "hidden" else "run"] += 1
        finally:
            print("DOCS-TEST-BLOCK closing the producers left open", file=sys.stderr, flush=True)
            from waterdrop.producer import _LIVE

            for producer in list(_LIVE):
                try:
                    producer.close(force=True)
                except Exception:  # noqa: BLE001 - a producer the example left in a bad state
                    pass
    sys.stdout.flush()
    print("DOCS-TEST-RESULT " + json.dumps(result), flush=True)
    return 0 if result["failure"] is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
