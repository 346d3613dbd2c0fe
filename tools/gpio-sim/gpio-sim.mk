# gpio-sim: a FUSE simulator of /sys/class/gpio, and the character-device chip simulator.
# Included by the top-level Makefile, which defines BUILD, CXX, CXXFLAGS and LDFLAGS.
#
# Provides:
#   GPIO_SIM_LIB      the fixture library (evw::sim::GpioSim, evw::sim::GpioChipSim); link it
#                     with $(FUSE_LIBS); installed as libevw-gpiosim.a
#   GPIO_SIM_BIN      the gpio-sim program
#   GPIO_SIM_HEADERS  the fixtures' headers, installed as <evw/sim/...>
#   GPIO_SIM_INCLUDE  stamp of $(BUILD)/include-sim/evw/sim -> tools/gpio-sim, so code in the
#                     tree includes <evw/sim/gpio_sim.hpp> as installed code does
#   GPIO_SIM_CFLAGS   -I for that
#   FUSE_CFLAGS, FUSE_LIBS

GPIO_SIM_DIR    := tools/gpio-sim
GPIO_SIM_OBJDIR := $(BUILD)/tools/gpio-sim
GPIO_SIM_HEADERS := $(GPIO_SIM_DIR)/gpio_sim.hpp $(GPIO_SIM_DIR)/chip_sim.hpp
GPIO_SIM_LIB    := $(BUILD)/libevw-gpiosim.a
GPIO_SIM_INCLUDE := $(BUILD)/include-sim/evw.stamp
GPIO_SIM_CFLAGS := -I$(BUILD)/include-sim
GPIO_SIM_BIN    := $(BUILD)/gpio-sim

FUSE_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS   := $(shell pkg-config --libs fuse3 2>/dev/null) -pthread

GPIO_SIM_LIB_OBJS := $(GPIO_SIM_OBJDIR)/model.o $(GPIO_SIM_OBJDIR)/filesystem.o $(GPIO_SIM_OBJDIR)/gpio_sim.o \
                     $(GPIO_SIM_OBJDIR)/chip_sim.o
GPIO_SIM_MAIN_OBJ := $(GPIO_SIM_OBJDIR)/main.o

$(GPIO_SIM_INCLUDE):
	@mkdir -p $(BUILD)/include-sim/evw
	@ln -sfn $(CURDIR)/$(GPIO_SIM_DIR) $(BUILD)/include-sim/evw/sim
	@touch $@

# -fPIC: a user may link the archive into a shared library of tests.
$(GPIO_SIM_OBJDIR)/%.o: $(GPIO_SIM_DIR)/%.cpp | $(BUILD)/include/evw.stamp
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -fPIC $(FUSE_CFLAGS) -I$(BUILD)/include -MMD -MP -c $< -o $@

$(GPIO_SIM_LIB): $(GPIO_SIM_LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(GPIO_SIM_BIN): $(GPIO_SIM_MAIN_OBJ) $(GPIO_SIM_LIB)
	$(CXX) $(CXXFLAGS) $^ $(LDFLAGS) $(FUSE_LIBS) -o $@

# tests/test_gpio_sim.cpp runs the program, which it looks for next to the test binary.
ifdef TEST_BIN
$(TEST_BIN): | $(GPIO_SIM_BIN)
endif

-include $(GPIO_SIM_LIB_OBJS:.o=.d) $(GPIO_SIM_MAIN_OBJ:.o=.d)
