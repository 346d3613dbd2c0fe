// GpioLine (character device, uAPI v2): event decoding fed through a pipe,
// lost-event accounting, the watcher's musts, argument and kernel errors; the
// request itself only where a /dev/gpiochip* exists (skipped otherwise).
#include <evw/watchers/gpio_line.hpp>
#include <evw/evw.hpp>

#include <doctest/doctest.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/gpio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "support.hpp"

namespace {

gpio_v2_line_event record(evw::Edge edge, std::uint32_t line_seqno, std::uint32_t offset = 4,
                          std::uint64_t ts = 0) {
  gpio_v2_line_event e{};
  e.timestamp_ns = ts != 0 ? ts : 1'000'000'000ull + line_seqno;
  e.id = edge == evw::Edge::Rising ? GPIO_V2_LINE_EVENT_RISING_EDGE : GPIO_V2_LINE_EVENT_FALLING_EDGE;
  e.offset = offset;
  e.seqno = line_seqno + 100;
  e.line_seqno = line_seqno;
  return e;
}

void put(int fd, const std::vector<gpio_v2_line_event>& events) {
  const auto size = static_cast<ssize_t>(events.size() * sizeof(gpio_v2_line_event));
  REQUIRE(::write(fd, events.data(), static_cast<std::size_t>(size)) == size);
}

struct Pipe {
  evw_test::Fd read_end, write_end;
  Pipe() {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    read_end.reset(p[0]);
    write_end.reset(p[1]);
  }
};

template <class Pred>
bool run_until(evw::Loop& loop, Pred pred, double timeout = 2.0) {
  bool expired = false;
  evw::Timer guard(loop, timeout, 0.0, [&](evw::Timer&, int) { expired = true; });
  guard.start();
  while (!pred() && !expired) loop.run(evw::Run::Once);
  return pred();
}

void settle(evw::Loop& loop, double seconds = 0.02) {
  bool done = false;
  evw::Timer t(loop, seconds, 0.0, [&](evw::Timer&, int) { done = true; });
  t.start();
  while (!done) loop.run(evw::Run::Once);
}

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0; }

// The batches a callback saw.
struct Batches {
  std::vector<std::vector<evw::GpioEvent>> got;
  int revents = 0;
  auto callback() {
    return [this](evw::GpioLine& l, int rev) {
      revents = rev;
      got.emplace_back(l.last_events().begin(), l.last_events().end());
    };
  }
};

std::string first_gpiochip() {
  std::string found;
  if (DIR* d = ::opendir("/dev")) {
    while (dirent* e = ::readdir(d))
      if (std::strncmp(e->d_name, "gpiochip", 8) == 0 && (found.empty() || e->d_name < found))
        found = e->d_name;
    ::closedir(d);
  }
  return found.empty() ? found : "/dev/" + found;
}

}  // namespace

TEST_CASE("GpioEventDecoder: records split anywhere, several lines, gaps and wrap-around") {
  std::vector<gpio_v2_line_event> in = {record(evw::Edge::Rising, 1, 4), record(evw::Edge::Falling, 1, 7),
                                        record(evw::Edge::Falling, 2, 4), record(evw::Edge::Rising, 5, 4),
                                        record(evw::Edge::Rising, 2, 7)};
  const auto* bytes = reinterpret_cast<const unsigned char*>(in.data());
  const std::size_t total = in.size() * sizeof(gpio_v2_line_event);
  for (std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{48}, std::size_t{100}, total}) {
    CAPTURE(step);
    evw::GpioEventDecoder decoder;
    std::vector<evw::GpioEvent> out;
    for (std::size_t at = 0; at < total; at += step) decoder.decode(bytes + at, std::min(step, total - at), out);
    REQUIRE(out.size() == 5);
    CHECK(decoder.partial() == 0);
    CHECK(out[0].edge == evw::Edge::Rising);
    CHECK(out[1].edge == evw::Edge::Falling);
    CHECK(out[1].line == 7);
    CHECK(out[3].line_seqno == 5);
    CHECK(out[3].seqno == 105);
    CHECK(out[3].timestamp_ns == 1'000'000'005ull);
    CHECK(out[3].lost == 2);  // 3 and 4 of line 4 were dropped
    CHECK(out[4].lost == 0);  // line 7 counts on its own
    CHECK(decoder.lost() == 2);
  }
  evw::GpioEventDecoder decoder;
  std::vector<evw::GpioEvent> out;
  auto late = record(evw::Edge::Rising, 3);  // the first event read is number 3: 2 were dropped
  auto odd = record(evw::Edge::Falling, 4);
  odd.id = 77;
  decoder.decode(&late, sizeof late, out);
  decoder.decode(&odd, sizeof odd, out);
  REQUIRE(out.size() == 2);
  CHECK(out[0].lost == 2);
  CHECK(out[1].lost == 0);
  CHECK(out[1].edge == evw::Edge::None);
  CHECK(decoder.lost() == 2);

  // line_seqno is a __u32: after 0xffffffff comes 0, which is no loss.
  evw::GpioEventDecoder wrapping;
  out.clear();
  for (std::uint32_t n : {0xfffffffeu, 0xffffffffu, 0u, 2u}) {
    auto r = record(evw::Edge::Rising, n);
    wrapping.decode(&r, sizeof r, out);
  }
  REQUIRE(out.size() == 4);
  CHECK(out[1].lost == 0);
  CHECK(out[2].lost == 0);
  CHECK(out[3].lost == 1);
  CHECK(wrapping.lost() == 1);
}

TEST_CASE("GpioLine on a pipe: one callback per batch with every field decoded") {
  evw::Loop loop;
  Pipe pipe;
  Batches seen;
  evw::GpioLine line(loop, evw::GpioLine::RequestFd{pipe.read_end.release()}, seen.callback());
  CHECK(line.line() == -1);
  CHECK(line.chip().empty());
  CHECK(line.fd() >= 0);
  line.start();
  put(pipe.write_end.get(), {record(evw::Edge::Rising, 1), record(evw::Edge::Falling, 2),
                             record(evw::Edge::Rising, 3)});
  REQUIRE(run_until(loop, [&] { return seen.got.size() == 1; }));
  CHECK(seen.revents == evw::Event::Read);
  const auto& batch = seen.got[0];
  REQUIRE(batch.size() == 3);
  CHECK(batch[0].edge == evw::Edge::Rising);
  CHECK(batch[1].edge == evw::Edge::Falling);
  CHECK(batch[2].edge == evw::Edge::Rising);
  CHECK(batch[1].line_seqno == 2);
  CHECK(batch[1].seqno == 102);
  CHECK(batch[1].line == 4);
  CHECK(batch[1].timestamp_ns == 1'000'000'002ull);
  CHECK(line.lost() == 0);
  settle(loop);
  CHECK(seen.got.size() == 1);  // all consumed: no spin, no empty callback
}

TEST_CASE("GpioLine on a pipe: batches of 16, gaps counted as lost, partial records wait") {
  evw::Loop loop;
  Pipe pipe;
  Batches seen;
  auto line = evw::GpioLine::from_fd(loop, pipe.read_end.release(), seen.callback());
  line.start();
  std::vector<gpio_v2_line_event> many;
  for (std::uint32_t i = 1; i <= 20; ++i) many.push_back(record(i % 2 ? evw::Edge::Rising : evw::Edge::Falling, i));
  put(pipe.write_end.get(), many);
  REQUIRE(run_until(loop, [&] { return seen.got.size() == 2; }));
  CHECK(seen.got[0].size() == 16);
  CHECK(seen.got[1].size() == 4);
  CHECK(seen.got[1].back().line_seqno == 20);

  // A gap: 21, then 25 (22..24 dropped by the kernel's full queue).
  put(pipe.write_end.get(), {record(evw::Edge::Rising, 21), record(evw::Edge::Falling, 25)});
  REQUIRE(run_until(loop, [&] { return seen.got.size() == 3; }));
  CHECK(seen.got[2][1].lost == 3);
  CHECK(line.lost() == 3);

  // Half a record: nothing yet; the rest completes it.
  auto r = record(evw::Edge::Rising, 26);
  const auto* bytes = reinterpret_cast<const char*>(&r);
  REQUIRE(::write(pipe.write_end.get(), bytes, 20) == 20);
  settle(loop);
  CHECK(seen.got.size() == 3);
  REQUIRE(::write(pipe.write_end.get(), bytes + 20, sizeof r - 20) == static_cast<ssize_t>(sizeof r - 20));
  REQUIRE(run_until(loop, [&] { return seen.got.size() == 4; }));
  CHECK(seen.got[3].size() == 1);
  CHECK(seen.got[3][0].line_seqno == 26);
  CHECK(line.lost() == 3);
}

TEST_CASE("GpioLine: end of file stops the watcher with Event::Hup; a non-request fd has no value") {
  evw::Loop loop;
  Pipe pipe;
  Batches seen;
  evw::GpioLine line(loop, evw::GpioLine::RequestFd{pipe.read_end.release()}, seen.callback());
  line.start();
  CHECK_THROWS_AS(line.read_value(), std::system_error);  // ENOTTY on a pipe
  pipe.write_end.reset();
  REQUIRE(run_until(loop, [&] { return seen.got.size() == 1; }));
  CHECK(seen.revents == evw::Event::Hup);
  CHECK_FALSE(line.is_active());
  CHECK_FALSE(loop.run(evw::Run::NoWait));
}

TEST_CASE("GpioLine: start/stop, priority against an Io, user data") {
  evw::Loop loop;
  Pipe pipe;
  auto [a, b] = evw_test::socket_pair();
  std::vector<char> order;
  evw::GpioLine line(loop, evw::GpioLine::RequestFd{pipe.read_end.release()},
                     [&](evw::GpioLine& l, int) { order.push_back(std::any_cast<char>(l.data())); });
  line.data() = 'g';
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    char c;
    while (::read(w.fd(), &c, 1) == 1) {}
    order.push_back('i');
  });
  line.set_priority(2);
  io.set_priority(-1);
  line.start();
  io.start();
  put(pipe.write_end.get(), {record(evw::Edge::Rising, 1)});
  REQUIRE(::write(b.get(), "x", 1) == 1);
  REQUIRE(run_until(loop, [&] { return order.size() == 2; }));
  CHECK(order == std::vector<char>{'g', 'i'});
  line.stop();
  put(pipe.write_end.get(), {record(evw::Edge::Falling, 2)});
  settle(loop);
  CHECK(order.size() == 2);
  line.start();  // the records waited in the fd
  REQUIRE(run_until(loop, [&] { return order.size() == 3; }));
  CHECK(line.last_events()[0].line_seqno == 2);
  line.stop();
  io.stop();
}

TEST_CASE("GpioLine: destroyed in its own callback; loop destroyed while active; fds closed") {
  const int fds_before = evw_test::open_fd_count();
  {
    evw::Loop loop;
    Pipe pipe;
    int calls = 0;
    int fd = pipe.read_end.release();
    std::unique_ptr<evw::GpioLine> line;
    line = std::make_unique<evw::GpioLine>(loop, evw::GpioLine::RequestFd{fd}, [&](evw::GpioLine&, int) {
      ++calls;
      line.reset();
    });
    line->start();
    put(pipe.write_end.get(), {record(evw::Edge::Rising, 1)});
    REQUIRE(run_until(loop, [&] { return calls == 1; }));
    CHECK(line == nullptr);
    CHECK_FALSE(is_open(fd));
    CHECK(loop.watcher_count() == 0);
  }
  {
    Pipe pipe;
    auto loop = std::make_unique<evw::Loop>();
    evw::GpioLine line(*loop, evw::GpioLine::RequestFd{pipe.read_end.release()}, [](evw::GpioLine&, int) {});
    line.start();
    put(pipe.write_end.get(), {record(evw::Edge::Rising, 1)});
    loop.reset();
    CHECK_FALSE(line.is_attached());
    CHECK_FALSE(line.is_active());
    CHECK_THROWS_AS(line.start(), std::logic_error);
  }
  CHECK(evw_test::open_fd_count() == fds_before);
}

TEST_CASE("GpioLine: bad arguments throw std::invalid_argument, a missing chip std::system_error") {
  evw::Loop loop;
  auto cb = [](evw::GpioLine&, int) {};
  CHECK_THROWS_AS(evw::GpioLine(loop, "/dev/gpiochip0", -1, cb), std::invalid_argument);
  evw::GpioLineConfig negative;
  negative.debounce = -0.001;
  CHECK_THROWS_AS(evw::GpioLine(loop, "/dev/gpiochip0", 0, negative, cb), std::invalid_argument);
  evw::GpioLineConfig huge;
  huge.debounce = 5000.0;
  CHECK_THROWS_AS(evw::GpioLine(loop, "/dev/gpiochip0", 0, huge, cb), std::invalid_argument);
  evw::GpioLineConfig bias;
  bias.bias = static_cast<evw::Bias>(12);
  CHECK_THROWS_AS(evw::GpioLine(loop, "/dev/gpiochip0", 0, bias, cb), std::invalid_argument);
  evw::GpioLineConfig name;
  name.consumer = std::string(40, 'x');
  CHECK_THROWS_AS(evw::GpioLine(loop, "/dev/gpiochip0", 0, name, cb), std::invalid_argument);
  evw::GpioLineConfig one;  // the kernel's EINVAL (a kfifo of one record), caught before the chip is opened
  one.event_buffer_size = 1;
  CHECK_THROWS_WITH_AS(evw::GpioLine(loop, "/dev/gpiochip-evw-none", 0, one, cb),
                       doctest::Contains("event_buffer_size"), std::invalid_argument);
  one.edge = evw::Edge::None;  // no edges, no queue: the kernel accepts it, and so does evw's check
  CHECK_THROWS_AS(evw::GpioLine(loop, "/dev/gpiochip-evw-none", 0, one, cb), std::system_error);
  CHECK_THROWS_AS(evw::GpioLine(loop, evw::GpioLine::RequestFd{-1}, cb), std::invalid_argument);
  // An empty callback: the adopted fd is closed all the same.
  Pipe pipe;
  const int fd = pipe.read_end.release();
  CHECK_THROWS_AS(evw::GpioLine(loop, evw::GpioLine::RequestFd{fd}, nullptr), std::invalid_argument);
  CHECK_FALSE(is_open(fd));

  try {
    evw::GpioLine l(loop, "/dev/gpiochip-evw-none", 3, cb);
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(e.code().value() == ENOENT);
    CHECK(std::string(e.what()).find("open /dev/gpiochip-evw-none") != std::string::npos);
  }
  try {
    evw::GpioLine l(loop, "/dev/null", 3, cb);  // opens, but is no GPIO chip
    FAIL("no exception");
  } catch (const std::system_error& e) {
    CHECK(std::string(e.what()).find("/dev/null") != std::string::npos);
  }
  CHECK(loop.watcher_count() == 0);
}

TEST_CASE("GpioLine: requesting a line of a real /dev/gpiochip") {
  const std::string chip = first_gpiochip();
  if (chip.empty()) EVW_SKIP("no /dev/gpiochip* on this machine (load gpio-sim or gpio-mockup to test the request path)");
  evw_test::Fd chip_fd(::open(chip.c_str(), O_RDWR | O_CLOEXEC));
  if (chip_fd.get() < 0) EVW_SKIP("cannot open " + chip + ": " + std::strerror(errno));
  gpiochip_info info{};
  REQUIRE(::ioctl(chip_fd.get(), GPIO_GET_CHIPINFO_IOCTL, &info) == 0);
  evw::Loop loop;
  auto cb = [](evw::GpioLine&, int) {};
  CHECK_THROWS_AS(evw::GpioLine(loop, chip, static_cast<int>(info.lines), cb), std::invalid_argument);
  // The first line nobody holds.
  int free_line = -1;
  for (unsigned i = 0; i < info.lines && free_line < 0; ++i) {
    gpio_v2_line_info li{};
    li.offset = i;
    if (::ioctl(chip_fd.get(), GPIO_V2_GET_LINEINFO_IOCTL, &li) == 0 && !(li.flags & GPIO_V2_LINE_FLAG_USED))
      free_line = static_cast<int>(i);
  }
  if (free_line < 0) EVW_SKIP("every line of " + chip + " is in use");
  evw::GpioLine line(loop, chip, free_line, evw::GpioLineConfig{.edge = evw::Edge::Both}, cb);
  CHECK(line.line() == free_line);
  CHECK(line.chip() == chip);
  const int v = line.read_value();
  CHECK((v == 0 || v == 1));
  line.start();
  loop.run(evw::Run::NoWait);
  // The line is ours now: a second request is refused.
  CHECK_THROWS_AS(evw::GpioLine(loop, chip, free_line, cb), std::system_error);
  line.stop();
}

// GpioLine has no set(): it is reconfigured by constructing it again, so the
// reconfiguration of an active or pending watcher is set_priority().
TEST_CASE("GpioLine: set_priority() while active keeps it delivering, at the new priority") {
  evw::Loop loop;
  Pipe pipe;
  auto [a, b] = evw_test::socket_pair();
  std::vector<char> order;
  evw::GpioLine line(loop, evw::GpioLine::RequestFd{pipe.read_end.release()},
                     [&](evw::GpioLine&, int) { order.push_back('g'); });
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    char c;
    while (::read(w.fd(), &c, 1) == 1) {}
    order.push_back('i');
  });
  line.set_priority(-1);
  line.start();
  io.start();
  line.set_priority(2);
  CHECK(line.is_active());
  CHECK(line.priority() == 2);
  put(pipe.write_end.get(), {record(evw::Edge::Rising, 1)});
  REQUIRE(::write(b.get(), "x", 1) == 1);
  REQUIRE(run_until(loop, [&] { return order.size() == 2; }));
  CHECK(order == std::vector<char>{'g', 'i'});
  CHECK(line.last_events()[0].line_seqno == 1);
  line.stop();
  io.stop();
}

TEST_CASE("GpioLine: set_priority() while pending keeps the event, delivered once with its records") {
  evw::Loop loop;
  Pipe pipe;
  auto [a, b] = evw_test::socket_pair();
  Batches seen;
  evw::GpioLine line(loop, evw::GpioLine::RequestFd{pipe.read_end.release()}, seen.callback());
  bool was_pending = false;
  // The Io runs first (priority 1 > 0) and re-prioritises the line while its event waits.
  evw::Io io(loop, a.get(), evw::Event::Read, [&](evw::Io& w, int) {
    char c;
    while (::read(w.fd(), &c, 1) == 1) {}
    was_pending = line.is_pending();
    line.set_priority(-1);
    w.stop();
  });
  io.set_priority(1);
  line.start();
  io.start();
  put(pipe.write_end.get(), {record(evw::Edge::Rising, 1), record(evw::Edge::Falling, 2)});
  REQUIRE(::write(b.get(), "x", 1) == 1);
  loop.run(evw::Run::Once);  // both are ready (pipe and socketpair writes are synchronous)
  CHECK(was_pending);
  REQUIRE(seen.got.size() == 1);  // in the same iteration, after the change
  CHECK(line.priority() == -1);
  settle(loop);
  REQUIRE(seen.got.size() == 1);
  REQUIRE(seen.got[0].size() == 2);
  CHECK(seen.got[0][1].line_seqno == 2);
  CHECK(seen.revents == evw::Event::Read);
  CHECK(line.is_active());
  line.stop();
}

TEST_CASE("GpioLine: stopping itself inside its callback; later records wait for the next start()") {
  evw::Loop loop;
  Pipe pipe;
  int calls = 0;
  evw::GpioLine line(loop, evw::GpioLine::RequestFd{pipe.read_end.release()}, [&](evw::GpioLine& l, int) {
    ++calls;
    l.stop();
  });
  line.start();
  put(pipe.write_end.get(), {record(evw::Edge::Rising, 1)});
  REQUIRE(run_until(loop, [&] { return calls == 1; }));
  CHECK_FALSE(line.is_active());
  put(pipe.write_end.get(), {record(evw::Edge::Falling, 2)});
  CHECK_FALSE(loop.run(evw::Run::NoWait));
  settle(loop);
  CHECK(calls == 1);
  line.start();
  REQUIRE(run_until(loop, [&] { return calls == 2; }));
  CHECK(line.last_events()[0].line_seqno == 2);
}

TEST_CASE("GpioLine: a loop-owned line active when its loop is destroyed is destroyed with it") {
  Pipe pipe;
  const int fd = pipe.read_end.release();
  auto loop = std::make_unique<evw::Loop>();
  auto token = std::make_shared<int>(0);
  std::weak_ptr<int> alive = token;
  loop->add<evw::GpioLine>(evw::GpioLine::RequestFd{fd}, [token](evw::GpioLine&, int) {}).start();
  put(pipe.write_end.get(), {record(evw::Edge::Rising, 1)});
  token.reset();
  REQUIRE_FALSE(alive.expired());  // held by the watcher's callback
  loop.reset();
  CHECK(alive.expired());
  CHECK_FALSE(is_open(fd));  // its request fd was closed
}
