"""The assistant from Python: play the built-in demo headless and print each answer.

    python examples/answers.py
"""

import sys

from glasses import DEMO_AUDIO, DEMO_VIDEO, Assistant, AssistantOptions, Mode, events


def main() -> int:
    options = AssistantOptions(view=str(DEMO_VIDEO), audio=str(DEMO_AUDIO), mode=Mode.SIMULATED)
    assistant = Assistant(options)
    assistant.subscribe(lambda e: print("heard:", e.text, file=sys.stderr),
                        events.FinalTranscript)
    assistant.subscribe(lambda e: print(e.text, flush=True), events.Answer)
    report = assistant.run()  # until the demo's media end; Ctrl-C stops it
    return 1 if report.errors else 0


if __name__ == "__main__":
    sys.exit(main())
