// GPIO line state with the rules of the kernel's sysfs GPIO interface (gpiolib-sysfs),
// independent of FUSE: what each attribute reads as, what each write does, which errno a bad
// write gets, and when a level change counts as an edge. Not thread-safe: the filesystem
// serialises every call with its own mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace evw::sim::detail {

enum class Edge { None, Rising, Falling, Both };

/// The four files of an exported gpioN directory.
enum class Attribute { Direction, Edge, Value, ActiveLow };

struct Line {
  bool exported = false;
  std::uint64_t generation = 0;  // bumped by export and unexport: open files of an old export go stale
  bool output = false;
  bool active_low = false;
  Edge edge = Edge::None;
  int input_level = 0;   // physical level driven through sim/gpioN
  int output_level = 0;  // physical level the line drives while it is an output
  std::uint64_t events = 0;  // edges that matched `edge`, as sysfs_notify counts them

  int physical() const noexcept { return output ? output_level : input_level; }
  int logical() const noexcept { return physical() ^ static_cast<int>(active_low); }
};

class Model {
 public:
  /// Called (with the caller's lock held) when pollers of a line's value must be woken:
  /// after a matching edge and after unexport.
  using Notify = std::function<void(unsigned line)>;

  Model(unsigned chips, unsigned lines_per_chip, Notify notify);

  unsigned chips() const noexcept { return chips_; }
  unsigned lines_per_chip() const noexcept { return lines_per_chip_; }
  unsigned line_count() const noexcept { return static_cast<unsigned>(lines_.size()); }
  const Line& line(unsigned n) const { return lines_.at(n); }

  /// Writes to /export and /unexport. Return 0 or an errno value.
  int export_line(std::string_view text);
  int unexport_line(std::string_view text);

  /// gpioN/<attribute>, for an exported line.
  std::string read(Attribute attribute, unsigned line) const;
  int write(Attribute attribute, unsigned line, std::string_view text);

  /// sim/gpioN: reads the physical level; a write drives the input level ("0" or "1").
  std::string read_level(unsigned line) const;
  int write_level(unsigned line, std::string_view text);
  void set_input(unsigned line, int level);

 private:
  int write_direction(Line& line, std::string_view text);
  int write_edge(Line& line, std::string_view text);
  int write_value(Line& line, std::string_view text);
  int write_active_low(Line& line, std::string_view text);
  int parse_line_number(std::string_view text, unsigned& line) const;

  unsigned chips_;
  unsigned lines_per_chip_;
  std::vector<Line> lines_;
  Notify notify_;
};

/// kstrtol(text, 0, …): optional sign, 0x/0 prefixes pick the base, one trailing newline.
/// Returns 0, EINVAL (not a number) or ERANGE (does not fit a long).
int parse_long(std::string_view text, long& value) noexcept;

/// sysfs_streq: equal, ignoring one trailing newline on `text`.
bool sysfs_streq(std::string_view text, std::string_view word) noexcept;

}  // namespace evw::sim::detail
