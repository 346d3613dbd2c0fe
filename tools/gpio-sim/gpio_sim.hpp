// gpio-sim as an in-process fixture: a FUSE filesystem that looks like /sys/class/gpio
// (export, unexport, gpiochipN/, gpioN/{direction,edge,value,active_low}), with the kernel's
// error codes and real POLLPRI | POLLERR notifications, plus sim/gpioN to drive input levels.
//
// Caveats:
// - Mounting needs /dev/fuse and the right to mount (root, or fusermount3); check
//   unavailable_reason() first and skip when it is not empty.
// - The filesystem is served by a background thread of this process, which blocks every
//   signal; the destructor stops it and unmounts (lazily, so files left open do not make it
//   hang: they fail with ENOTCONN afterwards).
// - Under valgrind (detected from LD_PRELOAD) it is served by a forked child process instead:
//   valgrind runs one thread at a time and keeps running a thread that is in epoll_ctl() or
//   stat(), so a thread that waits on a FUSE mount its own process serves waits for ever.
#pragma once

#include <memory>
#include <string>

namespace evw::sim {

/// Shape of the simulated GPIO space: chip k is gpiochip<k*lines>, with lines k*lines..
struct Options {
  unsigned chips = 1;    ///< number of gpiochipN directories (1..)
  unsigned lines = 64;   ///< lines per chip (1..65535); at most 65536 lines in all
  bool allow_other = false;  ///< mount with allow_other,default_permissions (other users may use it)
  /// Serve from a forked child process rather than a thread (always so under valgrind).
  bool separate_process = false;
};

/// A mounted gpio-sim filesystem, served from a background thread for its whole lifetime.
class GpioSim {
 public:
  /// @brief Mounts gpio-sim on an existing directory and starts serving it.
  /// @param mountpoint directory to mount on; root() gives its absolute path.
  /// @throws std::invalid_argument for bad Options;
  ///         std::system_error if the directory is missing or FUSE cannot be mounted there.
  explicit GpioSim(std::string mountpoint, Options opts = {});

  /// @brief Mounts on a fresh directory from mkdtemp() (under $TMPDIR or /tmp); the
  ///        destructor also removes that directory.
  /// @throws as the constructor.
  static std::unique_ptr<GpioSim> in_temp_dir(Options opts = {});

  /// Stops serving, unmounts, and removes the directory if in_temp_dir() made it. Never hangs.
  ~GpioSim();

  GpioSim(const GpioSim&) = delete;
  GpioSim& operator=(const GpioSim&) = delete;

  /// The absolute mount point: use it as GpioConfig::sysfs_root.
  const std::string& root() const noexcept { return root_; }

  /// Number of lines in all chips; valid line numbers are 0..line_count()-1.
  unsigned line_count() const noexcept;

  /// @brief Drives the physical input level of a line, exactly like writing <root>/sim/gpioN.
  ///        A change that matches the line's edge setting notifies its pollers before returning.
  /// @throws std::out_of_range for an unknown line; std::invalid_argument unless level is 0 or 1.
  void set_input(unsigned line, int level);

  /// @brief The input level last driven on a line (0 at start).
  /// @throws std::out_of_range for an unknown line.
  int input(unsigned line) const;

  /// False once the mount has gone away underneath (someone ran umount) and serving stopped.
  bool serving() const noexcept;

  /// @brief Why FUSE cannot be used here ("" if it can). Probes once per process by mounting
  ///        a throw-away instance, and caches the answer.
  static std::string unavailable_reason();

 /// @cond internal
  struct Server;  // serves the mount: a thread of this process, or a child process
  /// @endcond

 private:
  std::string root_;
  unsigned lines_ = 0;
  bool remove_dir_ = false;
  std::unique_ptr<Server> server_;
};

}  // namespace evw::sim
