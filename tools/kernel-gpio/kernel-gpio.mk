# make check-kernel: evw's Gpio and GpioLine against the real kernel's GPIO subsystem.
# Included by the top-level Makefile (after STATIC, LIBS and the pattern rule for
# $(BUILD)/obj are defined).
#
# The suite (tests/kernel/*.cpp with the shared runner tests/main.cpp) is linked
# statically, libev included, because the guest has no shared libraries;
# tools/kernel-gpio/run boots Debian's kernel in QEMU with the kernel's gpio-sim module
# and runs it there. KSERIES, KVER, PKGVER and KGPIO_* go to the script (see its
# header); KVER defaults to auto here, so that CI follows the archive once Debian
# supersedes the pinned kernel instead of failing to download it.

#
# Then the differential tests (tests/kernel/differential/): one script of raw sysfs
# operations against evw's FUSE simulator on the host and against the kernel in the
# guest, and one of character-device requests and drives against evw::sim::GpioChipSim
# and the kernel's gpiolib-cdev, each compared scenario by scenario.

KERNEL_SUITE_SRCS := $(wildcard tests/kernel/*.cpp)
KERNEL_SUITE_OBJS := $(KERNEL_SUITE_SRCS:%.cpp=$(BUILD)/obj/%.o) $(BUILD)/obj/tests/main.o
KERNEL_SUITE      := $(BUILD)/evw-kernel-tests
SYSFS_SCENARIOS   := $(BUILD)/sysfs-scenarios
LINE_SCENARIOS    := $(BUILD)/line-scenarios
KERNEL_RESULTS    := $(BUILD)/results-kernel
KVER              ?= auto
export KSERIES KVER PKGVER KGPIO_CACHE KGPIO_LINES KGPIO_TIMEOUT

.PHONY: check-kernel check-kernel-all kernel-suite

$(KERNEL_SUITE): $(KERNEL_SUITE_OBJS) $(STATIC)
	$(if $(SAN),$(error check-kernel: sanitizer builds cannot be linked statically for the guest))
	$(CXX) -static $(LDFLAGS) -o $@ $(KERNEL_SUITE_OBJS) $(STATIC) $(LIBS)

$(SYSFS_SCENARIOS): tests/kernel/differential/sysfs_scenarios.cpp
	$(CXX) -static $(CXXFLAGS) -o $@ $<

$(LINE_SCENARIOS): $(BUILD)/obj/tests/kernel/differential/line_scenarios.o $(GPIO_SIM_LIB) $(STATIC)
	$(if $(SAN),$(error check-kernel: sanitizer builds cannot be linked statically for the guest))
	$(CXX) -static $(LDFLAGS) -o $@ $< $(GPIO_SIM_LIB) $(STATIC) $(LIBS)

kernel-suite: $(KERNEL_SUITE) $(SYSFS_SCENARIOS) $(LINE_SCENARIOS)

check-kernel: ensure-deps
	@$(MAKE) --no-print-directory check-kernel-all

# -nc: the guest's console is a terminal, and doctest's colours would land in CI logs.
check-kernel-all: $(KERNEL_SUITE) $(SYSFS_SCENARIOS) $(LINE_SCENARIOS) $(GPIO_SIM_BIN)
	@rm -rf $(KERNEL_RESULTS); mkdir -p $(KERNEL_RESULTS)
	@tests/run-suite.sh $(KERNEL_RESULTS)/kernel tests/kernel/run.sh $(KERNEL_SUITE) -nc
	@tests/run-suite.sh $(KERNEL_RESULTS)/sysfs-diff tests/kernel/differential/run.sh \
	    $(SYSFS_SCENARIOS) $(GPIO_SIM_BIN) $${KGPIO_LINES:-32}
	@tests/run-suite.sh $(KERNEL_RESULTS)/line-diff tests/kernel/differential/line_run.sh $(LINE_SCENARIOS)
	@tests/summary.sh $(KERNEL_RESULTS)
