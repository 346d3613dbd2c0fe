// libFuzzer harness: gpio-sim's model of the kernel's sysfs GPIO rules
// (tools/gpio-sim/model.cpp), which every GPIO test of evw relies on.
//
// Each input is a sequence of writes (export, unexport, an attribute of a
// line, the sim control file, set_input) with fuzzer-chosen text. Checked:
// parse_long() against an independent kstrtol(s, 0) (lib/kstrtox.c); every
// write gets 0 or the kernel's errno for its file, and garbage never 0; the
// state stays one the kernel allows (an output never has an edge; attributes
// read back as sysfs prints them); an edge notifies exactly when it matches
// the line's `edge`.
#include "../tools/gpio-sim/model.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

using evw::sim::detail::Attribute;
using evw::sim::detail::Model;

namespace {

[[noreturn]] void mismatch(const std::string& what, std::string_view text) {
  std::string shown;
  for (char c : text) shown += std::isprint(static_cast<unsigned char>(c)) ? std::string(1, c) : "\\x" + std::to_string(static_cast<unsigned char>(c));
  std::fprintf(stderr, "sim_model: %s (text \"%s\")\n", what.c_str(), shown.c_str());
  std::abort();
}

// kstrtol(s, 0), written from lib/kstrtox.c independently of the simulator.
int kstrtol(std::string_view s, long& out) {
  std::size_t i = 0;
  bool negative = false;
  if (i < s.size() && s[i] == '-') negative = true, ++i;
  else if (i < s.size() && s[i] == '+') ++i;
  const auto at = [&](std::size_t k) -> char { return k < s.size() ? s[k] : '\0'; };
  unsigned base = 10;
  if (at(i) == '0') {
    if ((at(i + 1) | 0x20) == 'x' && std::isxdigit(static_cast<unsigned char>(at(i + 2)))) base = 16, i += 2;
    else base = 8;
  }
  unsigned long long v = 0;
  bool overflow = false;
  std::size_t digits = 0;
  for (; i < s.size(); ++i, ++digits) {
    const int c = std::tolower(static_cast<unsigned char>(s[i]));
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else break;
    if (d >= base) break;
    if (v > (ULLONG_MAX - d) / base) overflow = true;
    v = v * base + d;
  }
  if (overflow) return ERANGE;
  if (digits == 0) return EINVAL;
  if (i < s.size() && s[i] == '\n') ++i;
  if (i != s.size()) return EINVAL;
  const unsigned long long min_magnitude = static_cast<unsigned long long>(LONG_MAX) + 1;
  if (negative) {
    if (v > min_magnitude) return ERANGE;
    out = v == min_magnitude ? LONG_MIN : -static_cast<long>(v);
  } else {
    if (v > static_cast<unsigned long long>(LONG_MAX)) return ERANGE;
    out = static_cast<long>(v);
  }
  return 0;
}

bool is_word(std::string_view s, std::string_view w) {
  return s == w || (s.size() == w.size() + 1 && s.back() == '\n' && s.substr(0, w.size()) == w);
}

constexpr unsigned kLines = 8;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider fdp(data, size);
  unsigned notified[kLines] = {};
  Model model(2, kLines / 2, [&](unsigned line) { ++notified[line]; });
  while (fdp.remaining_bytes() > 0) {
    const int op = fdp.ConsumeIntegralInRange<int>(0, 7);
    const unsigned line = fdp.ConsumeIntegralInRange<unsigned>(0, kLines - 1);
    const std::string text = fdp.ConsumeRandomLengthString(40);
    long n = 0;
    const int parsed = kstrtol(text, n);
    long got_n = 0;
    const int got = evw::sim::detail::parse_long(text, got_n);
    if (got != parsed || (got == 0 && got_n != n)) mismatch("parse_long disagrees with kstrtol", text);
    const bool in_range = parsed == 0 && n >= 0 && n < static_cast<long>(kLines);
    switch (op) {
      case 0: {  // export
        const bool was = in_range && model.line(static_cast<unsigned>(n)).exported;
        const int r = model.export_line(text);
        const int want = parsed != 0 ? parsed : !in_range ? EINVAL : was ? EBUSY : 0;
        if (r != want) mismatch("export: errno " + std::to_string(r) + ", want " + std::to_string(want), text);
        break;
      }
      case 1: {  // unexport
        const bool was = in_range && model.line(static_cast<unsigned>(n)).exported;
        const unsigned before = in_range ? notified[n] : 0;
        const int r = model.unexport_line(text);
        const int want = parsed != 0 ? parsed : !in_range || !was ? EINVAL : 0;
        if (r != want) mismatch("unexport: errno " + std::to_string(r) + ", want " + std::to_string(want), text);
        // The kernel wakes no poller when it removes gpioN (tests/kernel/differential).
        if (in_range && notified[n] != before) mismatch("unexport woke the pollers", text);
        break;
      }
      case 2: case 3: case 4: case 5: {  // an attribute of an exported line
        if (!model.line(line).exported) break;  // the file would not exist
        const auto attribute = static_cast<Attribute>(op - 2);
        const bool output = model.line(line).output;
        const int r = model.write(attribute, line, text);
        int want = 0;
        switch (attribute) {
          case Attribute::Direction:
            if (!is_word(text, "in") && !is_word(text, "out") && !is_word(text, "high") && !is_word(text, "low"))
              want = EINVAL;
            break;
          case Attribute::Edge:
            if (!is_word(text, "none") && !is_word(text, "rising") && !is_word(text, "falling") && !is_word(text, "both"))
              want = EINVAL;
            break;
          case Attribute::Value: want = !output ? EPERM : parsed; break;
          case Attribute::ActiveLow: want = parsed; break;
        }
        // A valid direction or edge may still be refused for the line's state: EIO.
        if (want == 0 && r == EIO && (attribute == Attribute::Direction || attribute == Attribute::Edge)) break;
        if (r != want) mismatch("attribute write: errno " + std::to_string(r) + ", want " + std::to_string(want), text);
        break;
      }
      case 6: {  // sim/gpioN
        const int r = model.write_level(line, text);
        const int want = is_word(text, "0") || is_word(text, "1") ? 0 : EINVAL;
        if (r != want) mismatch("sim level write", text);
        break;
      }
      default: {  // drive the input directly and check the notification
        const auto& l = model.line(line);
        const int level = fdp.ConsumeBool() ? 1 : 0;
        const int before = l.logical();
        const int physical_before = l.physical();
        const unsigned count = notified[line];
        model.set_input(line, level);
        const bool changed = l.physical() != physical_before;
        const bool rising = before == 0 && l.logical() == 1;
        const bool match = l.edge == evw::sim::detail::Edge::Both ||
                           (l.edge == evw::sim::detail::Edge::Rising && rising) ||
                           (l.edge == evw::sim::detail::Edge::Falling && !rising);
        const unsigned want = count + (l.exported && changed && match ? 1 : 0);
        if (notified[line] != want) mismatch("an edge notified wrongly", text);
        break;
      }
    }
    // Invariants of every line.
    for (unsigned k = 0; k < kLines; ++k) {
      const auto& l = model.line(k);
      if (l.output && l.edge != evw::sim::detail::Edge::None) mismatch("an output line has an edge", text);
      if (!l.exported) continue;
      const std::string d = model.read(Attribute::Direction, k);
      const std::string v = model.read(Attribute::Value, k);
      const std::string a = model.read(Attribute::ActiveLow, k);
      if ((d != "in\n" && d != "out\n") || (v != "0\n" && v != "1\n") || (a != "0\n" && a != "1\n"))
        mismatch("an attribute reads back wrongly", text);
      if ((v == "1\n") != (l.physical() ^ static_cast<int>(l.active_low))) mismatch("value is not the logical level", text);
    }
  }
  return 0;
}
