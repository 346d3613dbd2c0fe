# bench/bench.mk: the benchmarks behind `make bench` (see bench/README.md).
#
# Included by the top-level Makefile, which defines BUILD, CXX and the static library
# $(BUILD)/libevw.a with its headers staged under $(BUILD)/include. Paths are relative to the
# repository root, where make runs.
#
# The programs build with their own flags, never CXXFLAGS: they must be optimised and free of
# sanitizers whatever the build of the library under test uses.

# Included before the Makefile's first target: keep `all` the default goal.
bench_default_goal := $(.DEFAULT_GOAL)

BENCH_BIN      := $(BUILD)/bench
BENCH_CFLAGS   := -std=gnu11 -D_GNU_SOURCE -O2 -g -DNDEBUG -Wall -Wextra
BENCH_CXXFLAGS := -std=c++20 -O2 -g -DNDEBUG -Wall -Wextra

# A sanitized library cannot be linked into (or fairly compared by) these programs.
ifneq ($(SAN),)
.PHONY: bench bench-build bench-http bench-http-build
bench bench-build bench-http bench-http-build:
	@echo "bench: not with SAN=$(SAN); run plain 'make bench'" >&2; exit 1
else

# One program per (workload, event loop); the pipe-chain programs take -t for the +timer variant.
BENCH_PROGS := pipe_epoll pipe_libev pipe_evpp pipe_libuv pipe_libevent \
               oob_epoll oob_libev_nested oob_libev_nested_cb oob_libuv \
               post_libuv post_asio scale_libev

# The evw programs join as soon as the watchers they use exist in the tree.
BENCH_EVW_PROGS := pipe_evw pipe_poll pipe_coro oob_evw post_evw scale_evw

BENCH_LIBS_pipe_libev       := -lev
BENCH_LIBS_pipe_evpp        := -lev
BENCH_LIBS_pipe_libuv       := -luv
BENCH_LIBS_pipe_libevent    := -levent_core
BENCH_LIBS_oob_libev_nested := -lev
BENCH_LIBS_oob_libev_nested_cb := -lev
BENCH_LIBS_oob_libuv        := -luv
BENCH_LIBS_post_libuv       := -luv -pthread
BENCH_LIBS_post_asio        := -pthread
BENCH_LIBS_scale_libev      := -lev

.PHONY: bench bench-build

bench-build: $(addprefix $(BENCH_BIN)/,$(BENCH_PROGS) $(BENCH_EVW_PROGS) $(BENCH_EVW_PROGS:%=%_shared))

bench: bench-build
	bench/run.sh $(BUILD)

$(BENCH_BIN):
	mkdir -p $@

$(BENCH_BIN)/%: bench/%.c bench/common.h | $(BENCH_BIN)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(BENCH_LIBS_$*)

$(BENCH_BIN)/%: bench/%.cpp bench/common.h | $(BENCH_BIN)
	$(CXX) $(BENCH_CXXFLAGS) -o $@ $< $(BENCH_LIBS_$*)

# The cross-thread post programs share one more header.
$(addprefix $(BENCH_BIN)/,post_libuv post_asio post_evw): bench/post_common.h

ifneq ($(BENCH_EVW_PROGS),)
# Each evw program twice: against libevw.a, and against libevw.so as `make install` builds it
# and `pkg-config --libs evw` links it (what users get; found through an rpath here).
$(addprefix $(BENCH_BIN)/,$(BENCH_EVW_PROGS)): $(BENCH_BIN)/%: bench/%.cpp bench/common.h \
                                                 $(BUILD)/libevw.a $(PUBLIC_HEADERS) | $(BENCH_BIN)
	$(CXX) $(BENCH_CXXFLAGS) -I$(BUILD)/include -o $@ $< $(BUILD)/libevw.a -lev -pthread

$(addprefix $(BENCH_BIN)/,$(BENCH_EVW_PROGS:%=%_shared)): $(BENCH_BIN)/%_shared: bench/%.cpp bench/common.h \
                                                 $(SHARED) $(PUBLIC_HEADERS) | $(BENCH_BIN)
	$(CXX) $(BENCH_CXXFLAGS) -I$(BUILD)/include -o $@ $< -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -levw -pthread

$(BENCH_BIN)/post_evw_shared: bench/post_common.h
$(addprefix $(BENCH_BIN)/,scale_libev scale_evw scale_evw_shared): bench/scale.h
endif

# The HTTP keep-alive servers (bench/http.sh): evw's links libevw.so, as `pkg-config --libs evw`
# links users' programs; the rpath finds it in $(BUILD) without installing.
HTTP_PROGS := http_libev http_libuv http_asio http_evw
HTTP_COMMON := $(BENCH_BIN)/http_common.o

.PHONY: bench-http bench-http-build
bench-http-build: $(addprefix $(BENCH_BIN)/,$(HTTP_PROGS))

bench-http: bench-http-build
	bench/http.sh $(BUILD)

# The shared work is one object compiled by $(CC), so every server runs the same machine code.
$(HTTP_COMMON): bench/http_common.c bench/http_common.h | $(BENCH_BIN)
	$(CC) $(BENCH_CFLAGS) -c -o $@ $<

$(BENCH_BIN)/http_libev: bench/http_libev.c bench/http_common.h $(HTTP_COMMON)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(HTTP_COMMON) -lev

$(BENCH_BIN)/http_libuv: bench/http_libuv.c bench/http_common.h $(HTTP_COMMON)
	$(CC) $(BENCH_CFLAGS) -o $@ $< $(HTTP_COMMON) -luv

$(BENCH_BIN)/http_asio: bench/http_asio.cpp bench/http_common.h $(HTTP_COMMON)
	$(CXX) $(BENCH_CXXFLAGS) -o $@ $< $(HTTP_COMMON) -pthread

$(BENCH_BIN)/http_evw: bench/http_evw.cpp bench/http_common.h $(HTTP_COMMON) $(SHARED) $(PUBLIC_HEADERS)
	$(CXX) $(BENCH_CXXFLAGS) -I$(BUILD)/include -o $@ $< $(HTTP_COMMON) -L$(BUILD) \
	    -Wl,-rpath,$(abspath $(BUILD)) -levw
endif

.DEFAULT_GOAL := $(bench_default_goal)
