# swarm-medic - plain Makefile.
#
#   make            build the worker and the simulator into build/bin/
#   make demo       install deps if missing, build, run the local demo
#   make test       install deps if missing, build, run every Check suite
#   make asan       the suite under AddressSanitizer + UBSan (build-asan/)
#   make valgrind   the end-to-end suite with the worker under valgrind
#   make bench      benchmarks against the raw bus (not part of make test)
#   make golden     regenerate the golden recordings in tests/golden/
#
# core/ is pure by construction: it is compiled with only core/ on the
# include path, archived alone (libsmcore.a), and its tests link without
# cnats, LMDB or protobuf-c. `make purity` also greps for forbidden calls.

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
EDGE_LIBS  := -lnats -llmdb -lprotobuf-c -ljansson -lisal -lm -pthread

CORE_SRC  := $(wildcard core/*.c)
CORE_OBJ  := $(CORE_SRC:%.c=$(BUILD)/%.o)
CORE_LIB  := $(BUILD)/libsmcore.a

PROTO     := schema/swarm_medic.proto
PB_C      := $(GEN)/swarm_medic.pb-c.c
PB_H      := $(GEN)/swarm_medic.pb-c.h
PB_OBJ    := $(BUILD)/gen/swarm_medic.pb-c.o

# Every worker/*.c except the program mains goes into the edge library.
MAINS     := worker/main.c worker/sim_main.c worker/bench_main.c
EDGE_SRC  := $(filter-out $(MAINS),$(wildcard worker/*.c))
EDGE_OBJ  := $(EDGE_SRC:%.c=$(BUILD)/%.o) $(PB_OBJ)
EDGE_LIB  := $(BUILD)/libsmedge.a

# Core suites link libsmcore.a and Check only.
CORE_TESTS := window detect
ALL_TESTS  := $(patsubst tests/check_%.c,%,$(wildcard tests/check_*.c))
EDGE_TESTS := $(filter-out $(CORE_TESTS),$(ALL_TESTS))
TEST_BINS  := $(ALL_TESTS:%=$(BIN)/check_%)
TEST_SUPPORT := $(BUILD)/tests/support.o

.PHONY: all deps demo test asan valgrind bench golden purity clean

all: purity $(BIN)/swarm-medic $(BIN)/swarm-sim

deps:
	@sh deploy/install-deps.sh

# ---- generated protobuf code (kept out of the source tree)
$(PB_C) $(PB_H) &: $(PROTO)
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -I schema $(PROTO)

$(PB_OBJ): $(PB_C)
	@mkdir -p $(@D)
	$(CC) $(CSTD) $(OPT) -g $(SAN) -Wall -I $(GEN) -c $< -o $@

# ---- core: only core/ on the include path
$(BUILD)/core/%.o: core/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(WARN) -I core -c $< -o $@

$(CORE_LIB): $(CORE_OBJ)
	rm -f $@ && ar rcs $@ $^

# ---- worker edge
$(BUILD)/worker/%.o: worker/%.c $(PB_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(WARN) -I core -I worker -I $(GEN) -c $< -o $@

$(EDGE_LIB): $(EDGE_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BIN)/swarm-medic: $(BUILD)/worker/main.o $(EDGE_LIB) $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(EDGE_LIBS) -o $@

$(BIN)/swarm-sim: $(BUILD)/worker/sim_main.o $(EDGE_LIB) $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(EDGE_LIBS) -o $@

$(BIN)/swarm-bench: $(BUILD)/worker/bench_main.o $(EDGE_LIB) $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(EDGE_LIBS) -o $@

# ---- tests
$(BUILD)/tests/%.o: tests/%.c $(PB_H)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_BASE) $(WARN) -I core -I worker -I tests -I $(GEN) -c $< -o $@

$(CORE_TESTS:%=$(BIN)/check_%): $(BIN)/check_%: $(BUILD)/tests/check_%.o $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(CHECK_LIBS) -o $@

$(EDGE_TESTS:%=$(BIN)/check_%): $(BIN)/check_%: $(BUILD)/tests/check_%.o $(TEST_SUPPORT) $(EDGE_LIB) $(CORE_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ $(EDGE_LIBS) $(CHECK_LIBS) -o $@

purity:
	@bad=$$(grep -nE '#include *[<"](nats|lmdb|protobuf-c|jansson|stdio)|\b(time|clock_gettime|gettimeofday|printf|fprintf|syslog)\s*\(' core/*.c core/*.h || true); \
	 if [ -n "$$bad" ]; then echo "core/ must stay pure (no bus, store, wire, clock or logging):"; echo "$$bad"; exit 1; fi
	@bad=$$(grep -nE '\b(malloc|calloc|realloc)\s*\(' core/*.c | grep -v 'SM_ALLOC_OK' || true); \
	 if [ -n "$$bad" ]; then echo "core/: allocation outside create/grow (mark the allowed lines SM_ALLOC_OK):"; echo "$$bad"; exit 1; fi

test: deps all $(TEST_BINS)
	@sh tests/run.sh $(BIN)

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

valgrind: all $(TEST_BINS)
	SM_WORKER_WRAPPER="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --quiet" \
	  sh tests/run.sh $(BIN) e2e

# A benchmark, not a test: figures against the raw bus, same machine, same run.
bench: deps all $(BIN)/swarm-bench
	$(BIN)/swarm-bench --bin $(BIN)

# Regenerates tests/golden/*.rec and their expected conclusions.
golden: all
	sh tests/golden/regen.sh $(BIN)

demo: deps all
	@sh deploy/demo.sh $(BIN)

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
