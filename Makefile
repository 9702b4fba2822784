# swarm-medic - plain Makefile.
#
#   make            build the worker and the simulator into build/bin/
#   make demo       install deps if missing, build, run the local demo
#   make test       install deps if missing, build, run every Check suite
#   make asan       the suite under AddressSanitizer + UBSan (build-asan/)
#   make valgrind   the end-to-end suite with the worker under valgrind
#   make bench      benchmarks against the raw bus (not part of make test)
#   make soak       20 SIGKILLs mid-stream: the conclusion ids equal an
#                   uninterrupted run's, none repeated; 1 M fuzzed messages:
#                   peak RSS and LMDB size under their bounds (not part of
#                   make test)
#   make golden     regenerate the golden recordings in tests/golden/
#   make eval       score every tests/scenarios/*.json (swarm-sim, then
#                   swarm-medic score): one table, the gap to the targets
#   make eval-baseline  rewrite tests/scenarios/baseline.tsv (the ratchet
#                   make test holds the detectors to) from the detectors
#   make eval-target    fail unless every scenario meets its target floor
#
# One archive per folder, each linking only the ones below it:
#
#   core/           libsmcore.a    windows, detectors (pure)
#   worker/         libsmworker.a  the product: bus, store, wire, handlers
#   worker/tools/   libsmtools.a   record, replay, backtest, watch, the
#                                  recording format, protobuf as JSON
#   worker/sim/     libsmsim.a     the simulated swarm (+ swarm-sim)
#   worker/bench/                  swarm-bench, with the tests' nats harness
#   tests/                         Check suites, support, the nats harness
#
# swarm-medic is worker/main.c + libsmtools.a + libsmworker.a + libsmcore.a:
# its commands (watch, record, replay, backtest) come from the tools, never
# the simulator or the benchmark.
#
# Each folder is compiled with its own include path, so a folder sees only
# the headers of the folders below it. core/ is pure by construction: only
# core/ on its include path, archived alone, and its tests link without
# cnats, LMDB or protobuf-c; `make purity` also greps for forbidden calls.
# The product's include path has no tool folder, and `make layering` fails
# if worker/ includes a tools, simulator, bench or test header (main.c,
# the program, alone may include worker/tools/ headers, by path).

BUILD    ?= build
BIN      := $(BUILD)/bin
GEN      := $(BUILD)/gen

CC       ?= cc
OPT      ?= -O2
SAN      ?=
CSTD     := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS_BASE := $(CSTD) $(OPT) -g $(SAN) -MMD -MP
LDFLAGS  += $(SAN)

CHECK_LIBS := -lcheck_pic -lsubunit -lrt -lm -pthread
EDGE_LIBS  := -lnats -llmdb -lprotobuf-c -ljansson -lisal -lmicrohttpd -lsystemd -lm -pthread

CORE_SRC  := $(wildcard core/*.c)
CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/%.o)
CORE_LIB  := $(BUILD)/libsmcore.a

PROTO     := schema/swarm_medic.proto
PB_C      := $(GEN)/swarm_medic.pb-c.c
PB_H      := $(GEN)/swarm_medic.pb-c.h
PB_OBJ    := $(BUILD)/gen/swarm_medic.pb-c.o

# The product: every worker/*.c but the program's main.
WORKER_SRC := $(filter-out worker/main.c,$(wildcard worker/*.c))
WORKER_OBJ := $(WORKER_SRC:%.c=$(BUILD)/%.o)
WORKER_LIB := $(BUILD)/libsmworker.a
MAIN_OBJ   := $(BUILD)/worker/main.o

TOOLS_OBJ  := $(patsubst %.c,$(BUILD)/%.o,$(wildcard worker/tools/*.c))
TOOLS_LIB  := $(BUILD)/libsmtools.a

SIM_OBJ    := $(patsubst %.c,$(BUILD)/%.o,$(filter-out worker/sim/sim_main.c,$(wildcard worker/sim/*.c)))
SIM_LIB    := $(BUILD)/libsmsim.a
SIM_MAIN   := $(BUILD)/worker/sim/sim_main.o

BENCH_OBJ  := $(BUILD)/worker/bench/bench_main.o
HARNESS    := $(BUILD)/tests/harness.o

# Core suites link libsmcore.a and Check only.
CORE_TESTS := window detect failures forecast pattern query scale
ALL_TESTS  := $(patsubst tests/check_%.c,%,$(wildcard tests/check_*.c))
EDGE_TESTS := $(filter-out $(CORE_TESTS),$(ALL_TESTS))
TEST_BINS  := $(ALL_TESTS:%=$(BIN)/check_%)
TEST_OBJ   := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tests/*.c))
TEST_SUPPORT := $(BUILD)/tests/support.o $(HARNESS)

# Headers the product must not include, and the pattern that finds them.
empty :=
space := $(empty) $(empty)
alt    = $(subst $(space),|,$(basename $(notdir $(1))))
TOOL_H  := $(wildcard worker/tools/*.h)
OTHER_H := $(wildcard worker/sim/*.h worker/bench/*.h tests/*.h)
INCLUDE_OF = \#include *"([^"]*/)?($(call alt,$(1)))\.h"

.PHONY: all deps demo test asan valgrind bench soak golden eval eval-baseline eval-target purity layering clean

all: purity layering $(BIN)/swarm-medic $(BIN)/swarm-sim

deps:
	@sh deploy/install-deps.sh

# ---- generated protobuf code (kept out of the source tree)
$(PB_C) $(PB_H) &: $(PROTO)
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -I schema $(PROTO)

$(PB_OBJ): $(PB_C)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(OPT) -g $(SAN) -Wall -I $(GEN) -c $< -o $@

# ---- compiling: one rule, and each folder its own include path
$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(WARN) $(INC) -c $< -o $@

$(CORE_OBJ):                INC := -I core
$(WORKER_OBJ) $(MAIN_OBJ):  INC := -I core -I worker -I $(GEN)
$(TOOLS_OBJ):               INC := -I core -I worker -I worker/tools -I $(GEN)
$(SIM_OBJ) $(SIM_MAIN):     INC := -I core -I worker -I worker/tools -I worker/sim -I $(GEN)
$(BENCH_OBJ) $(TEST_OBJ):   INC := -I core -I worker -I worker/tools -I worker/sim -I tests -I $(GEN)

$(WORKER_OBJ) $(MAIN_OBJ) $(TOOLS_OBJ) $(SIM_OBJ) $(SIM_MAIN) $(BENCH_OBJ) $(TEST_OBJ): $(PB_H)

# ---- archives, one per folder
$(CORE_LIB): $(CORE_OBJ)
	rm -f $@ && ar rcs $@ $^

$(WORKER_LIB): $(WORKER_OBJ) $(PB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(TOOLS_LIB): $(TOOLS_OBJ)
	rm -f $@ && ar rcs $@ $^

$(SIM_LIB): $(SIM_OBJ)
	rm -f $@ && ar rcs $@ $^

# ---- programs
$(BIN)/swarm-medic: $(MAIN_OBJ) $(TOOLS_LIB) $(WORKER_LIB) $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(EDGE_LIBS) -o $@

$(BIN)/swarm-sim: $(SIM_MAIN) $(SIM_LIB) $(TOOLS_LIB) $(WORKER_LIB) $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(EDGE_LIBS) -o $@

$(BIN)/swarm-bench: $(BENCH_OBJ) $(HARNESS) $(SIM_LIB) $(TOOLS_LIB) $(WORKER_LIB) $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(EDGE_LIBS) -o $@

# ---- tests
$(CORE_TESTS:%=$(BIN)/check_%): $(BIN)/check_%: $(BUILD)/tests/check_%.o $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(CHECK_LIBS) -o $@

$(EDGE_TESTS:%=$(BIN)/check_%): $(BIN)/check_%: $(BUILD)/tests/check_%.o $(TEST_SUPPORT) $(SIM_LIB) $(TOOLS_LIB) $(WORKER_LIB) $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(EDGE_LIBS) $(CHECK_LIBS) -o $@

purity:
	@bad=$$(grep -nE '#include *[<"](nats|lmdb|protobuf-c|jansson|stdio)|\b(time|clock_gettime|gettimeofday|printf|fprintf|syslog)\s*\(' core/*.c core/*.h || true); \
	 if [ -n "$$bad" ]; then echo "core/ must stay pure (no bus, store, wire, clock or logging):"; echo "$$bad"; exit 1; fi
	@bad=$$(grep -nE '\b(malloc|calloc|realloc)\s*\(' core/*.c | grep -v 'SM_ALLOC_OK' || true); \
	 if [ -n "$$bad" ]; then echo "core/: allocation outside create/grow (mark the allowed lines SM_ALLOC_OK):"; echo "$$bad"; exit 1; fi

# The product stands apart from its tools: worker/ includes no header of
# worker/tools/, worker/sim/, worker/bench/ or tests/; main.c and the tools
# include none of the simulator, the benchmark or the tests.
layering:
	@bad=$$(grep -nE '$(call INCLUDE_OF,$(TOOL_H) $(OTHER_H))' $(filter-out worker/main.c,$(wildcard worker/*.c worker/*.h)) || true); \
	 if [ -n "$$bad" ]; then echo "worker/ is the product: it includes no tools, simulator, bench or test header:"; echo "$$bad"; exit 1; fi
	@bad=$$(grep -nE '$(call INCLUDE_OF,$(OTHER_H))' worker/main.c worker/tools/*.c worker/tools/*.h || true); \
	 if [ -n "$$bad" ]; then echo "swarm-medic and its tools include no simulator, bench or test header:"; echo "$$bad"; exit 1; fi

test: deps all $(TEST_BINS)
	@sh tests/run.sh $(BIN)

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

valgrind: all $(TEST_BINS)
	SM_WORKER_WRAPPER="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --quiet" \
	  CK_RUN_CASE=e2e sh tests/run.sh $(BIN) e2e

# A benchmark, not a test: figures against the raw bus, same machine, same run.
bench: deps all $(BIN)/swarm-bench
	$(BIN)/swarm-bench --bin $(BIN)

# Slow: the SIGKILL test of make test (5 kills) with 20 kills a recording,
# and 1 M fuzzed messages through a worker with a store (its peak RSS and
# LMDB size against their bounds, printed).
soak: all $(BIN)/check_e2e $(BIN)/check_fuzz
	SM_SOAK_KILLS=20 CK_RUN_CASE=sigkill CK_FORK=yes $(BIN)/check_e2e
	SM_FUZZ_MESSAGES=1000000 CK_RUN_CASE=messages CK_FORK=yes $(BIN)/check_fuzz

# Regenerates tests/golden/*.rec and their expected conclusions.
golden: all
	sh tests/golden/regen.sh $(BIN)

# Detection quality: every scenario scored against its labels, one table
# (a report: exits non-zero only when a scenario cannot be scored).
eval: all
	@sh tests/scenarios/eval.sh $(BIN)

# The ratchet: figures as the detectors are now; commit the file when they
# get better. make test fails when any figure gets worse than it.
eval-baseline: all $(BIN)/check_scenarios
	$(BIN)/check_scenarios --write-baseline tests/scenarios/baseline.tsv
	$(BIN)/check_scenarios --write-heal-baseline tests/scenarios/heal-baseline.tsv

# The targets: every scenario's "floor" (fails until the detectors meet them).
eval-target: all $(BIN)/check_scenarios
	CK_FORK=yes $(BIN)/check_scenarios --target

demo: deps all
	@sh deploy/demo.sh $(BIN)

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
