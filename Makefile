# evw — typed event watchers on libev.
#   make            static + shared library
#   make check      every test, ending with "N passed, N failed"
#   make check-kernel  Gpio and GpioLine on the real kernel's gpio-sim, in QEMU (tools/kernel-gpio)
#   make demo       build and run the tour of every watcher
#   make install    PREFIX, LIBDIR, INCLUDEDIR, DESTDIR honoured; make uninstall undoes it

# ---- version (the one place) -------------------------------------------------
VERSION := 0.2.0
MAJOR   := $(word 1,$(subst ., ,$(VERSION)))
MINOR   := $(word 2,$(subst ., ,$(VERSION)))
# The ABI version in the SONAME: before 1.0 every minor release may break the
# ABI (0.2 renamed every public constant), so it is MAJOR.MINOR there.
SOVERSION := $(if $(filter 0,$(MAJOR)),$(MAJOR).$(MINOR),$(MAJOR))

# ---- install locations -------------------------------------------------------
PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
LIBDIR       ?= $(PREFIX)/lib
INCLUDEDIR   ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR     ?= $(LIBDIR)/cmake/evw
DESTDIR      ?=

# ---- build -------------------------------------------------------------------
# SAN=address,undefined (or thread) builds everything sanitized in its own dir.
# So does a compiler other than g++ (CXX=clang++: build-clang/): objects of two
# compilers never mix, and `make test CXX=clang++` really compiles everything with it.
SAN      ?=
CXX_TAG   = $(if $(filter g++ c++,$(notdir $(firstword $(CXX)))),,-$(subst ++,,$(notdir $(firstword $(CXX)))))
BUILD    ?= $(if $(SAN),build-$(subst $(comma),-,$(SAN)),build)$(CXX_TAG)
comma    := ,
CXX      ?= g++
# Sanitized builds compile at -O1 (what the sanitizers' own docs advise): -O2 with ASan takes
# four times as long to compile a test file. Test files need no optimizer: -O1, and -O0 under
# ASan (7 s per file instead of 26 s at -O2), which keeps CI's three builds in its budget.
OPT      ?= $(if $(SAN),-O1,-O2)
TEST_OPT ?= $(if $(findstring address,$(SAN)),-O0,-O1)
WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast
SANFLAGS := $(if $(SAN),-fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all)
CXXFLAGS ?= $(OPT) -g
CXXFLAGS += -std=c++20 $(WARN) $(SANFLAGS) -pthread
LDFLAGS  += $(SANFLAGS) -pthread
CPPFLAGS += -MMD -MP
LIBS     := -lev

LIB_HEADERS := evw.hpp $(wildcard core/*.hpp watchers/*.hpp coro/*.hpp)
# Internal headers are not installed.
PRIVATE_HEADERS := core/access.hpp core/backend.hpp core/backend_epoll.hpp core/fd_check.hpp core/io_relay.hpp core/priority_table.hpp core/exclusive_queue.hpp \
                   core/signals.hpp core/sys.hpp core/wakeup.hpp
PUBLIC_HEADERS  := $(filter-out $(PRIVATE_HEADERS),$(LIB_HEADERS))
LIB_SRCS := $(wildcard core/*.cpp watchers/*.cpp)
LIB_OBJS := $(LIB_SRCS:%.cpp=$(BUILD)/obj/%.o)

STATIC   := $(BUILD)/libevw.a
SHARED   := $(BUILD)/libevw.so.$(VERSION)
SONAME   := libevw.so.$(SOVERSION)
INCLUDE  := $(BUILD)/include/evw.stamp

TEST_SRCS := $(wildcard tests/*.cpp)
TEST_OBJS := $(TEST_SRCS:%.cpp=$(BUILD)/obj/%.o)
TEST_BIN  := $(BUILD)/evw-tests

EXAMPLE_SRCS := $(wildcard examples/*.cpp)
EXAMPLES     := $(EXAMPLE_SRCS:examples/%.cpp=$(BUILD)/examples/%)

.DEFAULT_GOAL := all

# Fragments owned by their folders.
-include tools/gpio-sim/gpio-sim.mk
-include bench/bench.mk
-include tests/reliability.mk
-include tools/kernel-gpio/kernel-gpio.mk

.PHONY: all lib check test check-headers check-install examples demo deps ensure-deps \
        install uninstall clean

all: lib
lib: $(STATIC) $(SHARED) $(INCLUDE)

# Headers are staged as build/include/evw -> the source tree, so code in the
# tree includes <evw/evw.hpp> exactly as installed code does.
$(INCLUDE):
	@mkdir -p $(BUILD)/include
	@ln -sfn $(CURDIR) $(BUILD)/include/evw
	@touch $@

$(BUILD)/obj/%.o: %.cpp | $(INCLUDE) $(GPIO_SIM_INCLUDE)
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -fPIC -fno-semantic-interposition -I$(BUILD)/include \
	    $(EXTRA_CXXFLAGS_$(firstword $(subst /, ,$*))) -c $< -o $@

$(STATIC): $(LIB_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(SHARED): $(LIB_OBJS)
	$(CXX) -shared -Wl,-soname,$(SONAME) $(LDFLAGS) -o $@ $^ $(LIBS)
	@ln -sfn libevw.so.$(VERSION) $(BUILD)/$(SONAME)
	@ln -sfn $(SONAME) $(BUILD)/libevw.so

# ---- tests -------------------------------------------------------------------
EXTRA_CXXFLAGS_tests := $(FUSE_CFLAGS) $(GPIO_SIM_CFLAGS) $(TEST_OPT)

$(TEST_BIN): $(TEST_OBJS) $(STATIC) $(GPIO_SIM_LIB)
	$(CXX) $(LDFLAGS) -o $@ $(TEST_OBJS) $(GPIO_SIM_LIB) $(STATIC) $(LIBS) $(FUSE_LIBS)

# check: deps first (a sub-make, so pkg-config sees what was just installed).
check: ensure-deps
	@$(MAKE) --no-print-directory check-all

test: ensure-deps
	@$(MAKE) --no-print-directory test-all

.PHONY: check-all test-all
RESULTS := $(BUILD)/results
check-all: lib $(TEST_BIN)
	@rm -rf $(RESULTS); mkdir -p $(RESULTS)
	@tests/run-suite.sh $(RESULTS)/unit $(TEST_BIN)
	@tests/check-headers.sh $(RESULTS)/headers "$(CXX)" "$(BUILD)/include" $(PUBLIC_HEADERS)
	@tests/run-suite.sh $(RESULTS)/examples $(MAKE) --no-print-directory examples-check
	@tests/check-install.sh $(RESULTS)/install $(MAKE) "$(BUILD)"
	@tests/summary.sh $(RESULTS)

# TEST_FILTER: a doctest -tc pattern, e.g. make test SAN=thread TEST_FILTER='*Async*'
TEST_FILTER ?=
test-all: lib $(TEST_BIN)
	@rm -rf $(RESULTS); mkdir -p $(RESULTS)
	@tests/run-suite.sh $(RESULTS)/unit $(TEST_BIN) $(if $(TEST_FILTER),'-tc=$(TEST_FILTER)')
	@tests/summary.sh $(RESULTS)

# ---- examples and the demo ---------------------------------------------------
EXTRA_CXXFLAGS_examples := $(GPIO_SIM_CFLAGS)

$(BUILD)/examples/%: $(BUILD)/obj/examples/%.o $(STATIC) $(GPIO_SIM_LIB)
	@mkdir -p $(dir $@)
	$(CXX) $(LDFLAGS) -o $@ $< $(GPIO_SIM_LIB) $(STATIC) $(LIBS) $(FUSE_LIBS)

examples: $(EXAMPLES)

# Every example builds; the ones that exit by themselves run and must exit 0. The http server
# runs under a tiny client (tests/check-http-example.sh) that makes it exit.
RUNNABLE_EXAMPLES := demo timer signal urgent poll periodic child stat async prepare_check pressure supervise attr threads reuseport exclusive
.PHONY: examples-check
examples-check: $(EXAMPLES)
	@pass=$(words $(EXAMPLES)); fail=0; \
	for e in $(RUNNABLE_EXAMPLES) http; do \
	  run="timeout 60 $(BUILD)/examples/$$e"; \
	  [ $$e = http ] && run="tests/check-http-example.sh $(BUILD)/examples/http"; \
	  if $$run >$(BUILD)/examples/$$e.out 2>&1; then pass=$$((pass + 1)); \
	  else fail=$$((fail + 1)); echo "FAIL: example $$e:"; cat $(BUILD)/examples/$$e.out; fi; \
	done; echo "examples: $$pass passed, $$fail failed"

demo: ensure-deps
	@$(MAKE) --no-print-directory $(BUILD)/examples/demo
	$(BUILD)/examples/demo

# ---- dependencies ------------------------------------------------------------
DEB_PACKAGES := libev-dev doctest-dev libfuse3-dev fuse3 libncurses-dev pkg-config g++ make
BENCH_PACKAGES := libuv1-dev libevent-dev libasio-dev valgrind wrk

deps:
	@if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(DEB_PACKAGES) $(if $(BENCH),$(BENCH_PACKAGES))

# Install the Debian packages only when something is missing and apt-get can run.
ensure-deps:
	@missing=; \
	[ -f /usr/include/ev.h ] || missing="$$missing libev-dev"; \
	[ -f /usr/include/doctest/doctest.h ] || missing="$$missing doctest-dev"; \
	pkg-config --exists fuse3 2>/dev/null || missing="$$missing libfuse3-dev"; \
	command -v fusermount3 >/dev/null || missing="$$missing fuse3"; \
	[ -f /usr/include/term.h ] || missing="$$missing libncurses-dev"; \
	command -v pkg-config >/dev/null || missing="$$missing pkg-config"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then \
	    echo "installing missing packages:$$missing (make deps installs $(DEB_PACKAGES))"; \
	    $(MAKE) --no-print-directory deps >/dev/null || exit 1; \
	  else echo "missing packages:$$missing — run 'make deps' (needs apt-get and root)"; exit 1; fi; \
	fi

# ---- install -----------------------------------------------------------------
$(BUILD)/%.pc: pkgconfig/%.pc.in Makefile
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< > $@

$(BUILD)/evwConfig.cmake: cmake/evwConfig.cmake.in Makefile
	@mkdir -p $(dir $@)
	sed -e "s|@INCLUDEDIR_FROM_CMAKEDIR@|$$(realpath -m --relative-to=$(CMAKEDIR) $(INCLUDEDIR))|g" \
	    -e 's|@VERSION@|$(VERSION)|g' -e 's|@SONAME@|$(SONAME)|g' $< > $@

$(BUILD)/evwConfigVersion.cmake: cmake/evwConfigVersion.cmake.in Makefile
	@mkdir -p $(dir $@)
	sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@MAJOR@|$(MAJOR)|g' -e 's|@MINOR@|$(MINOR)|g' $< > $@

.PHONY: FORCE
FORCE:
# The .pc and cmake files depend on PREFIX/LIBDIR: always regenerate them.
$(BUILD)/evw.pc $(BUILD)/evw-static.pc $(BUILD)/evw-gpiosim.pc $(BUILD)/evwConfig.cmake $(BUILD)/evwConfigVersion.cmake: FORCE

# The GPIO simulators (libevw-gpiosim.a, <evw/sim/...>) install with the library: users'
# tests and the GPIO examples build against them with pkg-config evw-gpiosim alone.
install: lib $(BUILD)/evw.pc $(BUILD)/evw-static.pc $(BUILD)/evw-gpiosim.pc $(BUILD)/evwConfig.cmake \
         $(BUILD)/evwConfigVersion.cmake $(GPIO_SIM_BIN) $(GPIO_SIM_LIB)
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(CMAKEDIR) $(DESTDIR)$(BINDIR)
	install -d $(addprefix $(DESTDIR)$(INCLUDEDIR)/evw/,$(sort $(dir $(PUBLIC_HEADERS))) sim/)
	for h in $(PUBLIC_HEADERS); do install -m 644 $$h $(DESTDIR)$(INCLUDEDIR)/evw/$$h; done
	install -m 644 $(GPIO_SIM_HEADERS) $(DESTDIR)$(INCLUDEDIR)/evw/sim/
	install -m 644 $(GPIO_SIM_LIB) $(DESTDIR)$(LIBDIR)/libevw-gpiosim.a
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/libevw.a
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/libevw.so.$(VERSION)
	ln -sfn libevw.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sfn $(SONAME) $(DESTDIR)$(LIBDIR)/libevw.so
	install -m 644 $(BUILD)/evw.pc $(BUILD)/evw-static.pc $(BUILD)/evw-gpiosim.pc $(DESTDIR)$(PKGCONFIGDIR)/
	install -m 644 $(BUILD)/evwConfig.cmake $(BUILD)/evwConfigVersion.cmake $(DESTDIR)$(CMAKEDIR)/
	$(if $(GPIO_SIM_BIN),install -m 755 $(GPIO_SIM_BIN) $(DESTDIR)$(BINDIR)/gpio-sim)
	@$(refresh-linker-cache)

uninstall:
	rm -f $(addprefix $(DESTDIR)$(INCLUDEDIR)/evw/,$(PUBLIC_HEADERS)) \
	      $(addprefix $(DESTDIR)$(INCLUDEDIR)/evw/sim/,$(notdir $(GPIO_SIM_HEADERS)))
	-rmdir $(addprefix $(DESTDIR)$(INCLUDEDIR)/evw/,$(filter-out ./,$(sort $(dir $(PUBLIC_HEADERS))) sim/)) 2>/dev/null
	-rmdir $(DESTDIR)$(INCLUDEDIR)/evw 2>/dev/null
	rm -f $(DESTDIR)$(LIBDIR)/libevw.a $(DESTDIR)$(LIBDIR)/libevw.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libevw-gpiosim.a \
	      $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libevw.so \
	      $(DESTDIR)$(PKGCONFIGDIR)/evw.pc $(DESTDIR)$(PKGCONFIGDIR)/evw-static.pc $(DESTDIR)$(PKGCONFIGDIR)/evw-gpiosim.pc \
	      $(DESTDIR)$(BINDIR)/gpio-sim \
	      $(DESTDIR)$(CMAKEDIR)/evwConfig.cmake $(DESTDIR)$(CMAKEDIR)/evwConfigVersion.cmake
	-rmdir $(DESTDIR)$(CMAKEDIR) $(DESTDIR)$(dir $(CMAKEDIR)) $(DESTDIR)$(PKGCONFIGDIR) 2>/dev/null
	@$(refresh-linker-cache)

# Installing into the live system (no DESTDIR) refreshes the dynamic linker's
# cache, as libtool installs do: without it a program linked against the new
# libevw.so fails to start ("cannot open shared object file"). A LIBDIR the
# linker does not search gets a hint instead.
define refresh-linker-cache
if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then \
  ldconfig; \
  if [ -e $(LIBDIR)/$(SONAME) ] && ! ldconfig -p | grep -q "$(LIBDIR)/$(SONAME)\$$"; then \
    echo "note: $(LIBDIR) is not in the dynamic linker's search path: add it to /etc/ld.so.conf.d/ or set LD_LIBRARY_PATH"; \
  fi; \
fi
endef

clean:
	rm -rf build build-*

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
