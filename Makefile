# Two commands do everything on a fresh machine with Python 3.11 and make:
#   make book   -> executed book in _build/html
#   make test   -> the test-suite
# Both (re)create .venv when it is missing or when pyproject.toml changed since it was built.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp's name carries a hash of pyproject.toml, so editing the pins makes the venv stale.
STAMP  := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-16)
PIP    := $(BIN)/python -m pip --disable-pip-version-check

SHELL := /bin/bash

export PYTHONHASHSEED := 0

.PHONY: book chapter notebooks test lab instructor-lab venv lint release clean clean-book sandbox-tools browser-tools help

help:
	@echo "make book   build the executed book into _build/html (creates .venv if needed)"
	@echo "make test   run the test-suite"
	@echo "make chapter CH=chapters/NN-name.md   build one chapter alone"
	@echo "make lab    open JupyterLab on the repository (students: open chapters/NN-*.ipynb)"
	@echo "make instructor-lab  JupyterLab with nbgrader's instructor tools"
	@echo "make lint   ruff"
	@echo "make release  regenerate assignments/ from solutions/"
	@echo "make notebooks  regenerate the chapters' .ipynb twins (for Colab) from the .md sources"

venv: $(STAMP)

$(STAMP): pyproject.toml
	@echo ">>> Creating/refreshing $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "Python 3.11+ is required, found " + sys.version' 
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) install -q -e . > $(VENV)/pip.log 2>&1 \
	  || { grep -v "is ignored: it is neither" $(VENV)/pip.log; echo ">>> pip install failed (log: $(VENV)/pip.log)"; exit 1; }
	@$(BIN)/python -c "import torch, torchvision; print('>>> torch', torch.__version__, '| torchvision', torchvision.__version__)"
	@$(BIN)/python -m trainlab.lab install $(VENV)
	@rm -f $(VENV)/.installed-*
	@touch $@

book: $(STAMP)
	@start=$$(date +%s); \
	TRAINLAB_BOOK_BUILD=1 $(BIN)/jupyter-book build . --builder html --warningiserror --nitpick --keep-going \
	  && echo ">>> Book built in $$(( $$(date +%s) - start )) s: open _build/html/index.html"

# Build one chapter alone (for authors): make chapter CH=chapters/01-sgd-learning-rate.md
chapter: $(STAMP)
	@test -n "$(CH)" || { echo "usage: make chapter CH=chapters/NN-name.md"; exit 2; }
	@name=$$(basename "$(CH)" .md); dir=_build/single/$$name; rm -rf $$dir/src; mkdir -p $$dir/src/chapters; \
	cp -r references.bib _ext $$dir/src/; cp "$(CH)" $$dir/src/chapters/; \
	$(BIN)/python -m trainlab.single_chapter _config.yml > $$dir/src/_config.yml; \
	printf 'format: jb-book\nroot: chapters/%s\n' $$name > $$dir/src/_toc.yml; \
	start=$$(date +%s); \
	TRAINLAB_BOOK_BUILD=1 $(BIN)/jupyter-book build $$dir/src --path-output $$dir --warningiserror --nitpick --keep-going \
	  && echo ">>> $$name built in $$(( $$(date +%s) - start )) s: $$dir/_build/html/chapters/$$name.html"

test: $(STAMP) sandbox-tools browser-tools
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Students: nbgrader's instructor tools off, solutions/ hidden. Chapters: open chapters/NN-*.ipynb.
lab: $(STAMP)
	JUPYTER_CONFIG_DIR=$(CURDIR)/$(VENV)/etc/jupyter-student $(BIN)/jupyter lab --notebook-dir=.

# Instructors: with nbgrader's Create Assignment and Formgrader.
instructor-lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=.

lint: $(STAMP)
	$(BIN)/ruff check .

# The chapters' .ipynb twins (for Colab's launch button) are generated from the .md sources.
notebooks: $(STAMP)
	$(BIN)/python -m trainlab.notebooks

release: $(STAMP)
	$(BIN)/python -m autograder release --all

# System tools the tests need, installed with apt where we can (root on Debian), else a note.
# $(call apt-ensure,COMMAND,PACKAGE,WHAT FOR,WHAT HAPPENS WITHOUT IT)
define apt-ensure
	@command -v $(1) >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo ">>> Installing $(2) for $(3)"; \
	    (apt-get install -y -qq $(2) >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $(2) >/dev/null 2>&1)) \
	      || echo ">>> WARNING: could not install $(2); $(4)"; \
	  else echo ">>> NOTE: $(1) not found; $(4)"; fi; }
endef

# The autograder sandboxes each submission with bubblewrap.
sandbox-tools:
	$(call apt-ensure,bwrap,bubblewrap,the grading sandbox,grading falls back to resource limits only)

# The browser tests (tests/test_browser.py) drive Debian's Chromium through Playwright; Playwright's own
# browser download is not used (no network at test time). TRAINLAB_CHROMIUM names another binary.
browser-tools:
	$(call apt-ensure,chromium,chromium,the browser tests,the browser tests fail in CI and skip elsewhere)

clean-book:
	rm -rf _build/html _build/jupyter_execute

clean:
	rm -rf _build $(VENV)
