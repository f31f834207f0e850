# rwkvscope: build, test, asan, bench, demo, deps, man, install.
# Sources are found by wildcard: add a file and it is built. One library holds
# everything but cli/; each tests/test_*.c is its own Check runner, each
# bench/bench_*.c its own benchmark, each cli/cmd_*.c one subcommand.

PRECISION ?= 32
SAN ?=
BUILD ?= build$(if $(filter 64,$(PRECISION)),64)$(if $(filter 1,$(SAN)),-asan)$(if $(filter fuzz,$(SAN)),-fuzz)

CC ?= cc
PKGS := hdf5 libzip jansson libpcre2-8 libutf8proc zlib libisal liblbfgs
OPT ?= -O3
CFLAGS_BASE := -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -fopenmp -fno-math-errno -g $(OPT) \
  -DRWKV_PRECISION=$(PRECISION) -I. $(shell pkg-config --cflags $(PKGS) check 2>/dev/null)
ifeq ($(SAN),1)
  CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  LDSAN := -fsanitize=address,undefined
endif
# make fuzz: clang's coverage instrumentation for libFuzzer, ASan and UBSan.
ifeq ($(SAN),fuzz)
  CFLAGS_BASE += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer -Wno-pass-failed \
    -fno-sanitize-recover=undefined
  LDSAN := -fsanitize=address,undefined
endif
CFLAGS += $(CFLAGS_BASE)
# OpenBLAS is the CBLAS behind every product, GSL's included: link it, not gslcblas.
LDLIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhdf5_hl -lgsl -lopenblas -lm -fopenmp $(LDSAN)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

LIB_DIRS := core probes analyses datasets
LIB_SRC := $(shell find $(LIB_DIRS) -name '*.c' 2>/dev/null | sort)
CLI_SRC := $(sort $(wildcard cli/*.c))
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_UTIL := $(sort $(wildcard tests/util_*.c))
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))
CMDS := $(patsubst cli/cmd_%.c,%,$(wildcard cli/cmd_*.c))

LIB := $(BUILD)/librwkvscope.a
BIN := $(BUILD)/rwkvscope
TESTS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCHES := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
OBJ = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

.PHONY: all test asan bench demo readme-figures deps clean tests-build man install uninstall fuzz fuzz-build
.SECONDARY: # keep object files of test and bench binaries
all: $(BIN)

# V=1 shows the full commands.
Q := $(if $(V),,@)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC    $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(call OBJ,$(LIB_SRC))
	@rm -f $@
	$(Q)ar rcs $@ $^

# The subcommand table is generated from the cmd_*.c file names.
$(BUILD)/gen/commands.h: $(wildcard cli/cmd_*.c) Makefile
	@mkdir -p $(dir $@)
	@printf '%s\n' $(foreach c,$(sort $(CMDS)),'RWKV_CMD($(c))') > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

$(BUILD)/obj/cli/main.o: $(BUILD)/gen/commands.h
$(BUILD)/obj/cli/main.o: CFLAGS += -I$(BUILD)/gen

$(BIN): $(call OBJ,$(CLI_SRC)) $(LIB)
	@$(if $(V),,echo "  LINK  $@")
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(call OBJ,$(TEST_UTIL)) $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

tests-build: $(TESTS) $(BIN)

# Tests run from the repo root; they find data in tests/fixtures and the CLI in $(BUILD).
test: deps
	@$(MAKE) --no-print-directory tests-build
	@RWKVSCOPE_BIN=$(abspath $(BIN)) BUILD=$(BUILD) sh tests/run.sh $(TESTS)

# The whole suite under AddressSanitizer and UBSan.
asan: deps
	@$(MAKE) --no-print-directory SAN=1 OPT=-O1 tests-build
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  RWKVSCOPE_BIN=$(abspath build-asan/rwkvscope) BUILD=build-asan \
	  sh tests/run.sh $(patsubst tests/%.c,build-asan/tests/%,$(TEST_SRC))

bench: deps $(BIN) $(BENCHES)
	@for b in $(BENCHES); do echo "== $$b"; RWKVSCOPE_BIN=$(abspath $(BIN)) $$b || exit 1; done
	@echo "== demo (scripts/demo.sh)"; RWKVSCOPE_BIN=$(abspath $(BIN)) bash scripts/demo.sh >/dev/null 2>&1 \
	  && echo "demo wall time: $$(cat results/demo/wall_seconds.txt) s (target: under 600 s on 2 cores)" \
	  || echo "demo FAILED (run make demo to see why)"

demo: deps
	@$(MAKE) --no-print-directory all
	@RWKVSCOPE_BIN=$(abspath $(BIN)) bash scripts/demo.sh

# The README's pictures (docs/img/, committed) from the last demo run: on purpose only.
readme-figures:
	@bash scripts/readme_figures.sh

deps:
	@sh scripts/deps.sh

# Man pages from --help (help2man): rwkvscope.1 and rwkvscope-<command>.1.
PREFIX ?= /usr/local
MAN_DIR := $(BUILD)/man
BASH_COMPLETION_DIR := $(PREFIX)/share/bash-completion/completions
man: $(BIN)
	@rm -rf $(MAN_DIR)
	@sh scripts/man.sh $(abspath $(BIN)) $(MAN_DIR)

# The binary, the man pages and the bash completion under $(DESTDIR)$(PREFIX).
install: all man
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(BASH_COMPLETION_DIR)
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/rwkvscope
	install -m 644 $(MAN_DIR)/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 scripts/rwkvscope-completion.bash $(DESTDIR)$(BASH_COMPLETION_DIR)/rwkvscope

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/rwkvscope $(DESTDIR)$(PREFIX)/share/man/man1/rwkvscope.1 \
	  $(DESTDIR)$(PREFIX)/share/man/man1/rwkvscope-*.1 $(DESTDIR)$(BASH_COMPLETION_DIR)/rwkvscope
# libFuzzer harnesses (fuzz/fuzz_<target>.c, docs/fuzzing.md): the library and the CLI's
# readers built by clang into build-fuzz/, each target run FUZZ_SECONDS on a corpus seeded
# from tests/fixtures (HDF5 seeds are written by the normal build's CLI into build-fuzz/).
# FUZZ_TARGETS="pth state" runs a subset.
FUZZ_SECONDS ?= 30
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_TARGETS ?= $(patsubst fuzz/fuzz_%.c,%,$(FUZZ_SRC))
FUZZ_CLI := $(BUILD)/libcli.a
FUZZ_BINS := $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))

$(FUZZ_CLI): $(call OBJ,$(filter-out cli/main.c,$(CLI_SRC)))
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/fuzz/%: $(BUILD)/obj/fuzz/%.o $(BUILD)/obj/fuzz/util.o $(FUZZ_CLI) $(LIB)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  LINK  $@")
	$(Q)$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-build: $(FUZZ_BINS)

fuzz:
	@sh scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory CC=clang SAN=fuzz OPT=-O1 fuzz-build
	@RWKVSCOPE_BIN=$(abspath $(BIN)) FUZZ_SECONDS=$(FUZZ_SECONDS) sh fuzz/run.sh $(FUZZ_TARGETS)

clean:
	rm -rf build build64 build-asan build-fuzz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
