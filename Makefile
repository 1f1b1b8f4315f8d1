# rampart - build, test, run and benchmark.
#
#   make              build bin/rampart-api, -worker, -webhook and -feeengine
#   make SAN=1        same with AddressSanitizer + UndefinedBehaviorSanitizer
#   make CC=clang     build with clang
#   make run          private PostgreSQL + Redis under .run/, migrate, start the daemons
#   make test         format and banned-function checks, unit tests, integration tests
#   make bench        benchmarks, each beside a baseline measured in the same run (QUICK=1: < 3 min)
#   make bench-tools  the constant-rate load generator (build/rel/bench/rate)
#   make test-compose the image, a pristine-container set-up and docker compose up, for real (root)
#   make compile_commands.json   the compilation database for editors (clangd), from these flags

CC      ?= cc
PKGS    := libevent libevent_pthreads hiredis jansson libcurl libpq openssl
WARN    := -std=c11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wwrite-strings -Wno-format-nonliteral -Werror
CFLAGS  ?= -O2 -g
CPPFLAGS += -D_GNU_SOURCE -Icommon/include $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
# Header dependencies: each compile writes its target's .d beside it (the
# headers it actually included), which the -include at the end reads back.
# The compiler writes it to a temporary name; POSTCOMPILE renames it and
# touches the target, so the target is never older than its .d (clang writes
# the .d after the object, which would rebuild it every time).
DEPFLAGS = -MMD -MP -MF $@.d.tmp
POSTCOMPILE = @mv -f $@.d.tmp $@.d && touch $@

ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
BUILD   ?= build/san
else ifeq ($(TSAN),1)
# ThreadSanitizer (make tsan): the api with several loops (tests/integration/test_tsan.py).
CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
BUILD   ?= build/tsan
else ifeq ($(FUZZ),1)
# libFuzzer harnesses (make fuzz): everything instrumented for coverage, ASan, UBSan.
CFLAGS  += -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
BUILD   ?= build/fuzz
else
BUILD   ?= build/rel
endif
# Where binaries go; CI builds several flavours side by side (BINDIR=build/san/bin).
BINDIR  ?= bin

COMMON_SRC := $(sort $(wildcard common/*.c))
COMMON_OBJ := $(COMMON_SRC:%.c=$(BUILD)/%.o)
API_SRC    := $(sort $(wildcard services/api/*.c))
API_OBJ    := $(API_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/migrations.o $(BUILD)/gen/openapi.o $(BUILD)/gen/dashboard.o
WORKER_SRC := $(sort $(wildcard services/worker/*.c))
WORKER_OBJ := $(WORKER_SRC:%.c=$(BUILD)/%.o)
WEBHOOK_SRC := $(sort $(wildcard services/webhook/*.c))
WEBHOOK_OBJ := $(WEBHOOK_SRC:%.c=$(BUILD)/%.o)
FEE_SRC    := $(sort $(wildcard services/feeengine/*.c))
FEE_OBJ    := $(FEE_SRC:%.c=$(BUILD)/%.o)
MIGRATIONS := $(sort $(wildcard db/migrations/*.sql))
# The operator dashboard's static files (GET /dashboard), embedded likewise.
DASHBOARD  := $(sort $(wildcard services/api/dashboard/*.html services/api/dashboard/*.css services/api/dashboard/*.js))
UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# Component tests drive common/ against real servers; pytest runs them with
# the servers it starts (tests/integration/test_components.py).
COMP_SRC   := $(sort $(wildcard tests/component/test_*.c))
COMP_BIN   := $(COMP_SRC:tests/component/%.c=$(BUILD)/tests/component/%)

BINS := $(BINDIR)/rampart-api $(if $(WORKER_SRC),$(BINDIR)/rampart-worker) \
	$(if $(WEBHOOK_SRC),$(BINDIR)/rampart-webhook) \
	$(if $(wildcard services/feeengine/main.c),$(BINDIR)/rampart-feeengine)

.PHONY: all clean test test-compose unit unit-bins valgrind components integration test-faults run bench bench-tools format format-check checksrc check-deps \
	fuzz fuzz-build fuzz-bins fuzz-replay fuzz-smoke tsan compile_commands.json
all: $(BINS)

# An object whose .d is missing (first build, or built before .d files
# existed) is rebuilt: see DEP_FILES at the end.
$(BUILD)/%.o: %.c $(BUILD)/%.o.d
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $(DEPFLAGS) -c -o $@ $<
	$(POSTCOMPILE)

# Migrations are embedded in the binary as C strings.
$(BUILD)/gen/migrations.c: $(MIGRATIONS) scripts/embed-migrations.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-migrations.sh $(MIGRATIONS) > $@

$(BUILD)/gen/migrations.o: $(BUILD)/gen/migrations.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

# So is the OpenAPI document, converted from YAML to JSON (GET /openapi.json).
$(BUILD)/gen/openapi.c: docs/openapi.yaml scripts/embed-openapi.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-openapi.sh docs/openapi.yaml > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/openapi.o: $(BUILD)/gen/openapi.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/gen/dashboard.c: $(DASHBOARD) scripts/embed-files.sh
	@mkdir -p $(dir $@)
	sh scripts/embed-files.sh dashboard_files $(DASHBOARD) > $@

$(BUILD)/gen/dashboard.o: $(BUILD)/gen/dashboard.c
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/libcommon.a: $(COMMON_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BINDIR)/rampart-api: $(API_OBJ) $(BUILD)/libcommon.a
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $(API_OBJ) $(BUILD)/libcommon.a $(LDLIBS)

$(BINDIR)/rampart-worker: $(WORKER_OBJ) $(BUILD)/libcommon.a
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $(WORKER_OBJ) $(BUILD)/libcommon.a $(LDLIBS)

$(BINDIR)/rampart-webhook: $(WEBHOOK_OBJ) $(BUILD)/libcommon.a
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $(WEBHOOK_OBJ) $(BUILD)/libcommon.a $(LDLIBS)

$(BINDIR)/rampart-feeengine: $(FEE_OBJ) $(BUILD)/libcommon.a
	@mkdir -p $(BINDIR)
	$(CC) $(LDFLAGS) -o $@ $(FEE_OBJ) $(BUILD)/libcommon.a $(LDLIBS)

# Unit tests link the common library and the services' modules (not main).
LIB_OBJ := $(filter-out %/main.o,$(API_OBJ) $(WORKER_OBJ) $(WEBHOOK_OBJ) $(FEE_OBJ))
TEST_INC := -Iservices/api -Iservices/worker -Iservices/webhook -Iservices/feeengine
$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/tests/%.d $(BUILD)/libcommon.a $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TEST_INC) $(CFLAGS) $(WARN) $(DEPFLAGS) $(LDFLAGS) -o $@ $< \
		$(LIB_OBJ) $(BUILD)/libcommon.a $(LDLIBS) -lcmocka
	$(POSTCOMPILE)

$(BUILD)/tests/component/%: tests/component/%.c $(BUILD)/tests/component/%.d $(BUILD)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $(DEPFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libcommon.a $(LDLIBS) -lcmocka
	$(POSTCOMPILE)

components: $(COMP_BIN)

# libFuzzer harnesses (fuzz/fuzz_*.c) link the same objects as the unit tests.
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/%: fuzz/%.c $(BUILD)/fuzz/%.d $(BUILD)/libcommon.a $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(TEST_INC) -Ifuzz \
		$(CFLAGS) $(WARN) $(DEPFLAGS) -fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_OBJ) \
		$(BUILD)/libcommon.a $(LDLIBS)
	$(POSTCOMPILE)

fuzz-bins: $(FUZZ_BIN)

fuzz-build:
	$(MAKE) FUZZ=1 CC=clang BUILD=build/fuzz fuzz-bins

# Every corpus input replayed, then each harness fuzzed for FUZZ_SECONDS
# (default 60) from its corpus; a finding fails and is left in build/fuzz/crashes/.
fuzz: fuzz-build
	sh scripts/fuzz.sh run

# What make test runs: every corpus input (regressions included) once, then
# each harness FUZZ_SECONDS (default 10).
fuzz-smoke: fuzz-build
	FUZZ_SECONDS=$${FUZZ_SECONDS:-10} sh scripts/fuzz.sh run

fuzz-replay: fuzz-build
	sh scripts/fuzz.sh replay

# The api under ThreadSanitizer, for tests/integration/test_tsan.py.
tsan:
	$(MAKE) TSAN=1 CC=clang BUILD=build/tsan BINDIR=build/tsan/bin build/tsan/bin/rampart-api

# Builds the unit tests without running them (the clang step of make test).
unit-bins: $(UNIT_BIN)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# The unit tests again under valgrind (release build: valgrind and the
# sanitizers do not mix); any error or leak fails.
valgrind: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== valgrind $$t"; \
		valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
			--show-leak-kinds=definite $$t >/dev/null; done

integration: all components
	RAMPART_BIN=$(BINDIR) RAMPART_COMPONENT_BIN=$(BUILD)/tests/component /usr/bin/python3 -m pytest -q tests/integration

test:
	sh scripts/test.sh

test-compose:
	sh tests/compose/run.sh

# The fault-injection campaign (docs/reliability.md): FAULT_SEED=n reruns one,
# FAULT_FAST=1 is the CI subset.
test-faults: all
	RAMPART_BIN=$(BINDIR) /usr/bin/python3 tests/faults/run_faults.py

run:
	sh scripts/run.sh

# One orchestrated run (bench/all.sh): its own PostgreSQL and Redis, the
# machine's limits, the api at a constant rate, the pipeline, the peers, then
# bench/run.sh, payments.sh, e2e.sh, webhooks.sh and fees.sh; tables, raw
# JSON and plots in bench/results/.
bench: all bench-tools
	QUICK=$(QUICK) sh bench/all.sh

bench-tools: $(BUILD)/bench/rate

$(BUILD)/bench/rate: bench/rate.c $(BUILD)/bench/rate.d
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) $(DEPFLAGS) $(LDFLAGS) -o $@ $< $(shell pkg-config --libs libevent 2>/dev/null)
	$(POSTCOMPILE)

# The compilation database clangd and other editors read: one entry per C
# file, with the flags the rules above use (no bear needed). Git-ignored.
CDB_CFLAGS = $(CPPFLAGS) $(CFLAGS) $(WARN)
compile_commands.json:
	@{ sep=' '; echo '['; \
	for f in $(COMMON_SRC) $(API_SRC) $(WORKER_SRC) $(WEBHOOK_SRC) $(FEE_SRC) bench/rate.c; do \
		printf '%s{"directory": "%s", "file": "%s", "command": "%s %s -c %s"}\n' \
			"$$sep" "$(CURDIR)" "$$f" "$(CC)" '$(CDB_CFLAGS)' "$$f"; sep=','; done; \
	for f in $(UNIT_SRC) $(COMP_SRC) $(FUZZ_SRC); do \
		printf '%s{"directory": "%s", "file": "%s", "command": "%s %s $(TEST_INC) -Ifuzz -c %s"}\n' \
			"$$sep" "$(CURDIR)" "$$f" "$(CC)" '$(CDB_CFLAGS)' "$$f"; sep=','; done; \
	echo ']'; } > $@.tmp && mv $@.tmp $@
	@echo "compile_commands.json: $$(grep -c '"file"' $@) files"

C_FILES = $(shell git ls-files --cached --others --exclude-standard '*.c' '*.h' 2>/dev/null || find common services tests -name '*.[ch]')
format:
	clang-format -i $(C_FILES)

format-check:
	clang-format --dry-run --Werror $(C_FILES)

checksrc:
	sh scripts/checksrc.sh

check-deps:
	sh scripts/deps.sh

clean:
	rm -rf build bin compile_commands.json

# What each object, test and harness included when it was last compiled. The
# .d files are named here, with an empty rule, so that a missing one counts as
# new and its target is rebuilt (not an intermediate file make would ignore).
DEP_FILES := $(addsuffix .d,$(filter-out $(BUILD)/gen/%,$(COMMON_OBJ) $(API_OBJ) $(WORKER_OBJ) \
	$(WEBHOOK_OBJ) $(FEE_OBJ)) $(UNIT_BIN) $(COMP_BIN) $(FUZZ_BIN) $(BUILD)/bench/rate)
$(DEP_FILES):
-include $(wildcard $(DEP_FILES))
