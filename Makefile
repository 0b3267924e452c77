# make run   set everything up, then play the simulator's built-in demo (headless without a screen)
# make test  set everything up, then ruff and the tests
# make test-fast  the unit tests only (no real models, nothing slow): under a minute
VENV   := .venv
PY     := $(VENV)/bin/python
GLASSES := $(VENV)/bin/glasses
PIP    := $(PY) -m pip install -q --disable-pip-version-check
# Debian packages: opencv's GUI libraries, PortAudio headers for pyaudio,
# espeak-ng to make test speech offline, Xvfb for window tests, strace to prove no socket opens,
# Chromium (headless) to test the companion page in a real browser
DEBS   := libgl1 libglib2.0-0 portaudio19-dev espeak-ng xvfb strace chromium

.PHONY: run test test-fast setup system models lint clean

run: setup models
	$(GLASSES) simulate

test: setup models
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow and not models"

lint: setup
	$(VENV)/bin/ruff check .

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(MAKE) system
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) torch==2.13.0  # first and exactly: the CPU build (any other spec pulls CUDA)
	$(PIP) --no-deps openai-whisper==20250625  # without triton; its needs are in [export]
	$(PIP) -e '.[dev,mic,voice,wake,export,ray]'
	touch $@

system:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "Debian packages present"; \
	elif ! command -v apt-get >/dev/null; then echo "please install: $$missing" >&2; \
	else sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing Debian packages: $$missing"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null; fi

models: setup
	$(GLASSES) models prepare

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
