# Reliability targets. Included by the top-level Makefile (`-include tests/reliability.mk`,
# after TEST_BIN, STATIC and the gpio-sim fragment are defined); uses BUILD, CXX, CXXFLAGS,
# LDFLAGS, STATIC, LIBS, GPIO_SIM_LIB, FUSE_CFLAGS, FUSE_LIBS, TEST_BIN and $(BUILD)/include.
#
#   make stress                 the model-based test (tests/test_model.cpp): STRESS_OPS operations
#                               for each seed of STRESS_SEEDS, plus STRESS_RANDOM random seeds
#   make soak DURATION=60       tools/soak: a mixed workload in one loop; fails if the RSS grows
#                               beyond SOAK_RSS_TOLERANCE_KB after warm-up or descriptors leak
#   make fuzz FUZZ_TIME=20      each libFuzzer harness of fuzz/ for FUZZ_TIME seconds (clang++;
#                               the library is compiled with clang into each harness)
#   make valgrind-check         memcheck over the Io, Timer, Priority and Gpio suites
#
# Each prints a closing "NAME: N passed, N failed" line.

.PHONY: stress soak fuzz fuzz-build valgrind-check

# ---- stress -------------------------------------------------------------------------------
STRESS_OPS    ?= 1000000
STRESS_SEEDS  ?= 1 2 3 4 5 6 7 8
STRESS_RANDOM ?= 4

stress: $(TEST_BIN)
	@pass=0; fail=0; \
	for seed in $(STRESS_SEEDS) $$(seq 1 $(STRESS_RANDOM) | sed 's/.*/random/'); do \
	  if [ $$seed = random ]; then seed_env=; else seed_env="EVW_SEED=$$seed"; fi; \
	  if env $$seed_env EVW_OPS=$(STRESS_OPS) $(TEST_BIN) -tc='model*' > $(BUILD)/stress.log 2>&1; \
	  then pass=$$((pass + 1)); else fail=$$((fail + 1)); cat $(BUILD)/stress.log; fi; \
	  grep -h -o 'model: [0-9]* operations in .*\|model: seed [0-9]*' $(BUILD)/stress.log | paste -sd' ' | sed 's/^model: seed \([0-9]*\) model: /stress: seed \1: /'; \
	done; \
	echo "stress: $$pass passed, $$fail failed"; [ $$fail = 0 ]

# ---- soak ---------------------------------------------------------------------------------
DURATION              ?= 60
SOAK_RSS_TOLERANCE_KB ?= 1024
SOAK_BIN              := $(BUILD)/soak

$(SOAK_BIN): tools/soak/soak.cpp $(STATIC) $(GPIO_SIM_LIB) | $(BUILD)/include/evw.stamp $(GPIO_SIM_INCLUDE)
	$(CXX) $(CXXFLAGS) -I$(BUILD)/include $(GPIO_SIM_CFLAGS) $< -o $@ $(LDFLAGS) \
	    $(GPIO_SIM_LIB) $(STATIC) $(LIBS) $(FUSE_LIBS)

soak: $(SOAK_BIN)
	@if $(SOAK_BIN) --duration $(DURATION) --rss-tolerance-kb $(SOAK_RSS_TOLERANCE_KB); \
	then echo "soak: 1 passed, 0 failed"; else echo "soak: 0 passed, 1 failed"; exit 1; fi

# ---- fuzz ---------------------------------------------------------------------------------
# clang++ builds the harnesses and the library sources they need (not the g++-built libevw.a:
# the library must carry the same sanitizer and coverage instrumentation).
FUZZ_CXX      ?= clang++
FUZZ_TIME     ?= 20
FUZZ_DIR      := $(BUILD)/fuzz
FUZZ_SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CXXFLAGS := -std=c++20 -O1 -g $(FUZZ_SAN) -I$(BUILD)/include
FUZZ_NAMES    := gpio_event_decoder gpio_sysfs sim_model
FUZZ_BINS     := $(FUZZ_NAMES:%=$(FUZZ_DIR)/%)
FUZZ_LIB_OBJS := $(patsubst %.cpp,$(FUZZ_DIR)/obj/%.o,$(wildcard core/*.cpp watchers/*.cpp))

$(FUZZ_DIR)/obj/%.o: %.cpp | $(BUILD)/include/evw.stamp
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_CXXFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/gpio_event_decoder $(FUZZ_DIR)/gpio_sysfs: $(FUZZ_DIR)/%: $(FUZZ_DIR)/obj/fuzz/%.o $(FUZZ_LIB_OBJS)
	$(FUZZ_CXX) $(FUZZ_SAN) -fsanitize=fuzzer $^ -o $@ $(LIBS) -pthread

$(FUZZ_DIR)/sim_model: $(FUZZ_DIR)/obj/fuzz/sim_model.o $(FUZZ_DIR)/obj/tools/gpio-sim/model.o
	$(FUZZ_CXX) $(FUZZ_SAN) -fsanitize=fuzzer $^ -o $@

fuzz-build: $(FUZZ_BINS)

# Each harness runs FUZZ_TIME seconds on its corpus ($(FUZZ_DIR)/corpus/NAME, seeded from
# fuzz/corpus/NAME when present); crashes land in $(FUZZ_DIR)/artifacts.
fuzz: $(FUZZ_BINS)
	@pass=0; fail=0; mkdir -p $(FUZZ_DIR)/artifacts; \
	for name in $(FUZZ_NAMES); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$name; \
	  if [ -d fuzz/corpus/$$name ]; then cp -n fuzz/corpus/$$name/* $(FUZZ_DIR)/corpus/$$name/ 2>/dev/null; fi; \
	  if $(FUZZ_DIR)/$$name -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	       -artifact_prefix=$(FUZZ_DIR)/artifacts/$$name- $(FUZZ_DIR)/corpus/$$name \
	       > $(FUZZ_DIR)/$$name.log 2>&1; \
	  then pass=$$((pass + 1)); status=ok; else fail=$$((fail + 1)); status=FAILED; tail -40 $(FUZZ_DIR)/$$name.log; fi; \
	  execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/$$name.log); \
	  rate=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $(FUZZ_DIR)/$$name.log); \
	  cov=$$(grep -o 'cov: [0-9]*' $(FUZZ_DIR)/$$name.log | tail -1); \
	  echo "fuzz: $$name: $$status, $$execs executions ($$rate/s), $$cov, corpus $$(ls $(FUZZ_DIR)/corpus/$$name | wc -l) inputs"; \
	done; \
	echo "fuzz: $$pass passed, $$fail failed"; [ $$fail = 0 ]

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)

# ---- valgrind -----------------------------------------------------------------------------
# fuse-compatible: without it valgrind hangs on the in-process FUSE mount of gpio-sim.
# doctest splits -tc filters on commas (a test named "10,000 ..." needs "10?000" in a filter).
VALGRIND        ?= valgrind
VALGRIND_FLAGS  ?= --error-exitcode=1 --leak-check=full --sim-hints=fuse-compatible --track-fds=no
# The gpio-sim fixture's own suite and the fault-injection suite are left out: readlink of
# /proc/self/... (realpath("/proc/self/status"), a Fault predicate naming the file behind an fd)
# trips an assertion inside valgrind 3.19 itself (syswrap-main.c:2265). Both run under ASan.
VALGRIND_FILTER  ?= Io*,*Timer*,*Priority*,*Gpio*,*Poll*
# test_post.cpp replaces the global operator new/delete (malloc/free, to count allocations); its
# inlined deletes meet memcheck's own operator new as "Mismatched free() / delete" (and forked
# children inherit the count): its tests (a "post: ... Timer" name matches *Timer*) run under ASan.
# The herd test counts context switches, which valgrind's own thread lock multiplies; and the
# child of the exclusive-Poll fork test inherits the TLS of a thread that does not exist in it,
# which memcheck reports as possibly lost at the child's exit. Both run under ASan.
VALGRIND_EXCLUDE ?= gpio-sim:*,fault:*,post:*,*four loops*,*Exclusive after fork*

valgrind-check: $(TEST_BIN)
	@$(VALGRIND) $(VALGRIND_FLAGS) $(TEST_BIN) -tc='$(VALGRIND_FILTER)' -tce='$(VALGRIND_EXCLUDE)' \
	    > $(BUILD)/valgrind.log 2>&1; rc=$$?; \
	pid=$$(sed -n '1s/^==\([0-9]*\)==.*/\1/p' $(BUILD)/valgrind.log); \
	grep -E "^==$$pid== +(in use at exit|definitely lost|indirectly lost|ERROR SUMMARY)" $(BUILD)/valgrind.log; \
	grep -E '^==[0-9]+== ERROR SUMMARY: [1-9]' $(BUILD)/valgrind.log; \
	grep -E '^SKIPPED' $(BUILD)/valgrind.log; \
	line=$$(grep -E '^evw-tests: [0-9]+ passed' $(BUILD)/valgrind.log | tail -1); \
	p=$$(echo "$$line" | sed -n 's/.* \([0-9]*\) passed.*/\1/p'); \
	f=$$(echo "$$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p'); \
	s=$$(echo "$$line" | sed -n 's/.* \([0-9]*\) skipped.*/\1/p'); \
	p=$${p:-0}; f=$${f:-0}; s=$${s:-0}; \
	if [ -z "$$line" ]; then f=$$((f + 1)); echo "valgrind: no summary line (exit status $$rc)"; \
	elif [ $$rc != 0 ] && [ $$f = 0 ]; then f=1; echo "valgrind: memcheck reported errors (exit status $$rc), see $(BUILD)/valgrind.log"; fi; \
	echo "valgrind: $$p passed, $$f failed, $$s skipped"; [ $$f = 0 ]
