#include "model.hpp"

#include <cerrno>
#include <climits>
#include <utility>

namespace evw::sim::detail {
namespace {

int digit_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'z') return c - 'a' + 10;
  if (c >= 'A' && c <= 'Z') return c - 'A' + 10;
  return 99;
}

bool is_hex_digit(char c) noexcept { return digit_value(c) < 16; }

const char* edge_name(Edge edge) noexcept {
  switch (edge) {
    case Edge::None: return "none";
    case Edge::Rising: return "rising";
    case Edge::Falling: return "falling";
    case Edge::Both: return "both";
  }
  return "none";
}

std::string bit(int value) { return value ? "1\n" : "0\n"; }

}  // namespace

int parse_long(std::string_view text, long& value) noexcept {
  std::size_t i = 0;
  const auto at = [&](std::size_t k) { return k < text.size() ? text[k] : '\0'; };
  bool negative = false;
  // kstrtol takes one '-', or one '+' (kstrtoull's), never both.
  if (at(i) == '-') {
    negative = true;
    ++i;
  } else if (at(i) == '+') {
    ++i;
  }
  unsigned base = 10;
  if (at(i) == '0') {
    if ((at(i + 1) == 'x' || at(i + 1) == 'X') && is_hex_digit(at(i + 2))) {
      base = 16;
      i += 2;
    } else {
      base = 8;
    }
  }
  unsigned long long magnitude = 0;
  bool overflow = false;
  std::size_t digits = 0;
  for (; i < text.size(); ++i, ++digits) {
    const int d = digit_value(text[i]);
    if (d >= static_cast<int>(base)) break;
    if (magnitude > (ULLONG_MAX - static_cast<unsigned>(d)) / base) overflow = true;
    magnitude = magnitude * base + static_cast<unsigned>(d);
  }
  // The kernel reports overflow before it looks at what follows the digits.
  if (overflow) return ERANGE;
  if (digits == 0) return EINVAL;
  if (at(i) == '\n') ++i;
  if (i != text.size()) return EINVAL;
  if (negative) {
    if (magnitude > static_cast<unsigned long long>(LONG_MAX) + 1) return ERANGE;
    value = magnitude == static_cast<unsigned long long>(LONG_MAX) + 1 ? LONG_MIN
                                                                       : -static_cast<long>(magnitude);
  } else {
    if (magnitude > static_cast<unsigned long long>(LONG_MAX)) return ERANGE;
    value = static_cast<long>(magnitude);
  }
  return 0;
}

bool sysfs_streq(std::string_view text, std::string_view word) noexcept {
  if (text == word) return true;
  return text.size() == word.size() + 1 && text.back() == '\n' && text.substr(0, word.size()) == word;
}

Model::Model(unsigned chips, unsigned lines_per_chip, Notify notify)
    : chips_(chips),
      lines_per_chip_(lines_per_chip),
      lines_(static_cast<std::size_t>(chips) * lines_per_chip),
      notify_(std::move(notify)) {}

int Model::parse_line_number(std::string_view text, unsigned& line) const {
  long number = 0;
  if (const int error = parse_long(text, number)) return error;
  // gpio_to_desc() finds no descriptor for a number outside every chip.
  if (number < 0 || number >= static_cast<long>(lines_.size())) return EINVAL;
  line = static_cast<unsigned>(number);
  return 0;
}

int Model::export_line(std::string_view text) {
  unsigned n = 0;
  if (const int error = parse_line_number(text, n)) return error;
  Line& line = lines_[n];
  if (line.exported) return EBUSY;  // already requested (by sysfs itself)
  line.exported = true;
  ++line.generation;
  return 0;
}

int Model::unexport_line(std::string_view text) {
  unsigned n = 0;
  if (const int error = parse_line_number(text, n)) return error;
  Line& line = lines_[n];
  if (!line.exported) return EINVAL;
  // Freeing the line releases its interrupt and clears the active-low flag; the direction
  // and output level stay with the hardware, as on a real chip.
  line.exported = false;
  ++line.generation;
  line.edge = Edge::None;
  line.active_low = false;
  // No notification: the kernel removes gpioN without waking the pollers of its files
  // (kernfs drains open files only of attributes with mmap or release). They stay
  // silent; a fresh poll of one reports POLLPRI|POLLERR, and reads fail with ENODEV.
  return 0;
}

std::string Model::read(Attribute attribute, unsigned n) const {
  const Line& line = lines_.at(n);
  switch (attribute) {
    case Attribute::Direction: return line.output ? "out\n" : "in\n";
    case Attribute::Edge: return std::string(edge_name(line.edge)) + "\n";
    case Attribute::Value: return bit(line.logical());
    case Attribute::ActiveLow: return bit(line.active_low);
  }
  return {};
}

int Model::write(Attribute attribute, unsigned n, std::string_view text) {
  Line& line = lines_.at(n);
  switch (attribute) {
    case Attribute::Direction: return write_direction(line, text);
    case Attribute::Edge: return write_edge(line, text);
    case Attribute::Value: return write_value(line, text);
    case Attribute::ActiveLow: return write_active_low(line, text);
  }
  return EINVAL;
}

int Model::write_direction(Line& line, std::string_view text) {
  int level = 0;
  if (sysfs_streq(text, "high")) {
    level = 1;
  } else if (sysfs_streq(text, "out") || sysfs_streq(text, "low")) {
    level = 0;
  } else if (sysfs_streq(text, "in")) {
    line.output = false;
    return 0;
  } else {
    return EINVAL;
  }
  // gpiolib refuses to turn a line that is locked as an interrupt into an output.
  if (line.edge != Edge::None) return EIO;
  // "high" and "low" are raw (physical) levels: active_low does not apply to them.
  line.output = true;
  line.output_level = level;
  return 0;
}

int Model::write_edge(Line& line, std::string_view text) {
  Edge edge = Edge::None;
  if (sysfs_streq(text, "none")) {
    edge = Edge::None;
  } else if (sysfs_streq(text, "rising")) {
    edge = Edge::Rising;
  } else if (sysfs_streq(text, "falling")) {
    edge = Edge::Falling;
  } else if (sysfs_streq(text, "both")) {
    edge = Edge::Both;
  } else {
    return EINVAL;
  }
  if (edge == line.edge) return 0;
  // Requesting the interrupt fails on an output: gpiochip_lock_as_irq() says EIO.
  if (edge != Edge::None && line.output) return EIO;
  line.edge = edge;
  return 0;
}

int Model::write_value(Line& line, std::string_view text) {
  if (!line.output) return EPERM;  // checked before the text is parsed, as the kernel does
  long value = 0;
  if (const int error = parse_long(text, value)) return error;
  line.output_level = static_cast<int>(value != 0) ^ static_cast<int>(line.active_low);
  return 0;
}

int Model::write_active_low(Line& line, std::string_view text) {
  long value = 0;
  if (const int error = parse_long(text, value)) return error;
  // Only the logical view flips; the pin does not move, so there is no edge.
  line.active_low = value != 0;
  return 0;
}

std::string Model::read_level(unsigned n) const { return bit(lines_.at(n).physical()); }

int Model::write_level(unsigned n, std::string_view text) {
  if (sysfs_streq(text, "0")) {
    set_input(n, 0);
  } else if (sysfs_streq(text, "1")) {
    set_input(n, 1);
  } else {
    return EINVAL;
  }
  return 0;
}

void Model::set_input(unsigned n, int level) {
  Line& line = lines_.at(n);
  const int before = line.logical();
  const int physical_before = line.physical();
  line.input_level = level ? 1 : 0;
  // An output drives its own pin: the new input level shows once the line is an input again.
  if (line.physical() == physical_before) return;
  const bool rising = before == 0 && line.logical() == 1;
  const bool match = line.edge == Edge::Both || (line.edge == Edge::Rising && rising) ||
                     (line.edge == Edge::Falling && !rising);
  if (line.exported && match) {
    ++line.events;
    notify_(n);
  }
}

}  // namespace evw::sim::detail
