# gpio-sim: a FUSE simulator of /sys/class/gpio. Included by the top-level Makefile, which
# defines BUILD, CXX, CXXFLAGS and LDFLAGS.
#
# Provides:
#   GPIO_SIM_LIB      the fixture library (evw::sim::GpioSim); link it with $(FUSE_LIBS)
#   GPIO_SIM_BIN      the gpio-sim program
#   GPIO_SIM_HEADER   the fixture's header (tests include it as "../tools/gpio-sim/gpio_sim.hpp")
#   FUSE_CFLAGS, FUSE_LIBS

GPIO_SIM_DIR    := tools/gpio-sim
GPIO_SIM_OBJDIR := $(BUILD)/tools/gpio-sim
GPIO_SIM_HEADER := $(GPIO_SIM_DIR)/gpio_sim.hpp
GPIO_SIM_LIB    := $(BUILD)/libgpiosim.a
GPIO_SIM_BIN    := $(BUILD)/gpio-sim

FUSE_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS   := $(shell pkg-config --libs fuse3 2>/dev/null) -pthread

GPIO_SIM_LIB_OBJS := $(GPIO_SIM_OBJDIR)/model.o $(GPIO_SIM_OBJDIR)/filesystem.o $(GPIO_SIM_OBJDIR)/gpio_sim.o
GPIO_SIM_MAIN_OBJ := $(GPIO_SIM_OBJDIR)/main.o

$(GPIO_SIM_OBJDIR)/%.o: $(GPIO_SIM_DIR)/%.cpp
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) $(FUSE_CFLAGS) -MMD -MP -c $< -o $@

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
