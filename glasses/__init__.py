"""glasses: an on-device assistant for AR glasses.

The one import namespace of the project. Its packages live in the repository's top-level
folders and are installed under this name (pyproject's `package-dir`): `glasses.device`,
`glasses.models`, `glasses.pipelines`, `glasses.simulator`, `glasses.export`, `glasses.cli`.

    from glasses import Assistant, AssistantOptions, events   # the public API (README)
"""

import os
import sys

# Nothing leaves the device: onnxruntime's telemetry (a background thread resolving its
# telemetry host, a device id written under the user's cache) is off. onnxruntime reads
# this when it is imported, so it is set here, before any package of ours can import it.
if "onnxruntime" in sys.modules and os.environ.get("ORT_DISABLE_TELEMETRY") != "1":
    print("glasses: warning: onnxruntime was imported before glasses, with its telemetry on; "
          "set ORT_DISABLE_TELEMETRY=1 or import glasses first", file=sys.stderr)
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__all__ = ["DEMO_AUDIO", "DEMO_VIDEO", "Assistant", "AssistantOptions", "Mode", "events"]


def __getattr__(name: str):
    # lazy: `glasses --help` and the device layer do not load the models' runtime
    if name in ("Assistant", "AssistantOptions"):
        from glasses.pipelines import assistant

        return getattr(assistant, name)
    if name == "Mode":
        from glasses.pipelines.sources import Mode

        return Mode
    if name == "events":
        from glasses.pipelines import events

        return events
    if name in ("DEMO_AUDIO", "DEMO_VIDEO"):  # the built-in demo's media, package data
        from importlib.resources import files

        return files("glasses.simulator") / "demo" / ("demo.wav" if name == "DEMO_AUDIO"
                                                      else "demo.mp4")
    raise AttributeError(f"module 'glasses' has no attribute {name!r}")
