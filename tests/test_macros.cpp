// Every public name of evw survives the macros of common system and library
// headers included before it (and one included after it): the reason 0.2
// renamed every ALL_CAPS constant. <curses.h> defines ERR, OK, TRUE and
// function-like macros (move, clear, erase, timeout); <arpa/tftp.h> ERROR and
// DATA; <termios.h> ECHO, B0 and the like; <sys/param.h> MIN, MAX, howmany;
// <syslog.h> LOG_*; <linux/gpio.h> GPIO_*; <signal.h> sa_handler and SIG*;
// <ev.h> ev_* function-like macros (ev_is_active, ev_cb, ev_priority, …). This file compiling is
// most of the test; the cases below also check the values against libev's.
#include <doctest/doctest.h>

#include <curses.h>
#include <arpa/tftp.h>
#include <termios.h>
#include <sys/param.h>
#include <syslog.h>
#include <linux/gpio.h>
#include <signal.h>
#include <ev.h>

#include <evw/evw.hpp>
#include <evw/coro/coro.hpp>

#include <term.h>  // after evw: ncurses' terminfo macros (lines, columns, bell, …)

#include <sys/socket.h>
#include <unistd.h>

#include <any>
#include <chrono>
#include <string>
#include <type_traits>

using namespace std::chrono_literals;

// The macros really are there: otherwise this file would prove nothing.
#if !defined(ERR) || !defined(OK) || !defined(ERROR) || !defined(MAX) || !defined(ECHO) || \
    !defined(LOG_ERR) || !defined(ev_is_active) || !defined(GPIO_MAX_NAME_SIZE) || !defined(columns)
#error "a header did not define the macros this test is about"
#endif

TEST_CASE("macro-proof names: every event bit, run flag, break mode and priority bound equals libev's") {
  static_assert(std::is_same_v<decltype(evw::Event::Read), const int>);
  CHECK(evw::Event::None == 0);
  CHECK(evw::Event::Read == EV_READ);
  CHECK(evw::Event::Write == EV_WRITE);
  CHECK(evw::Event::Timer == EV_TIMER);
  CHECK(evw::Event::Periodic == EV_PERIODIC);
  CHECK(evw::Event::Signal == EV_SIGNAL);
  CHECK(evw::Event::Child == EV_CHILD);
  CHECK(evw::Event::Stat == EV_STAT);
  CHECK(evw::Event::Idle == EV_IDLE);
  CHECK(evw::Event::Prepare == EV_PREPARE);
  CHECK(evw::Event::Check == EV_CHECK);
  CHECK(evw::Event::Embed == EV_EMBED);
  CHECK(evw::Event::Fork == EV_FORK);
  CHECK(evw::Event::Cleanup == EV_CLEANUP);
  CHECK(evw::Event::Async == EV_ASYNC);
  CHECK(evw::Event::Custom == EV_CUSTOM);
  CHECK(evw::Event::Error == EV_ERROR);
  // evw's own bits are distinct from each other and from libev's.
  const int own[] = {evw::Event::Pri, evw::Event::Hup, evw::Event::RdHup};
  int seen = EV_READ | EV_WRITE | EV__IOFDSET | EV_TIMER | EV_ERROR;
  for (const int bit : own) {
    CHECK((bit & (bit - 1)) == 0);
    CHECK((seen & bit) == 0);
    seen |= bit;
  }
  CHECK(evw::Run::Default == 0);
  CHECK(evw::Run::Once == EVRUN_ONCE);
  CHECK(evw::Run::NoWait == EVRUN_NOWAIT);
  CHECK(evw::Break::Cancel == EVBREAK_CANCEL);
  CHECK(evw::Break::One == EVBREAK_ONE);
  CHECK(evw::Break::All == EVBREAK_ALL);
  CHECK(evw::min_priority == EV_MINPRI);
  CHECK(evw::max_priority == EV_MAXPRI);
  CHECK(std::string(evw::version) == "0.2.0");
}

TEST_CASE("macro-proof names: loop flags and backends equal libev's and make loops") {
  CHECK(evw::LoopFlag::Auto == EVFLAG_AUTO);
  CHECK(evw::LoopFlag::NoEnv == EVFLAG_NOENV);
  CHECK(evw::LoopFlag::ForkCheck == EVFLAG_FORKCHECK);
  CHECK(evw::LoopFlag::NoInotify == EVFLAG_NOINOTIFY);
  CHECK(evw::LoopFlag::SignalFd == EVFLAG_SIGNALFD);
  CHECK(evw::LoopFlag::NoSigMask == EVFLAG_NOSIGMASK);
  CHECK(evw::LoopFlag::NoTimerFd == EVFLAG_NOTIMERFD);
  CHECK(evw::Backend::Select == EVBACKEND_SELECT);
  CHECK(evw::Backend::Poll == EVBACKEND_POLL);
  CHECK(evw::Backend::Epoll == EVBACKEND_EPOLL);
  CHECK(evw::Backend::Kqueue == EVBACKEND_KQUEUE);
  CHECK(evw::Backend::DevPoll == EVBACKEND_DEVPOLL);
  CHECK(evw::Backend::Port == EVBACKEND_PORT);
  CHECK(evw::Backend::LinuxAio == EVBACKEND_LINUXAIO);
  CHECK(evw::Backend::IoUring == EVBACKEND_IOURING);

  evw::Loop epoll_loop(evw::Backend::Epoll | evw::LoopFlag::ForkCheck | evw::LoopFlag::NoEnv);
  CHECK(epoll_loop.backend() == evw::Backend::Epoll);
  evw::Loop poll_loop(evw::Backend::Poll | evw::LoopFlag::SignalFd | evw::LoopFlag::NoSigMask);
  CHECK(poll_loop.backend() == evw::Backend::Poll);
  evw::Loop select_loop(evw::Backend::Select | evw::LoopFlag::NoInotify | evw::LoopFlag::NoTimerFd);
  CHECK(select_loop.backend() == evw::Backend::Select);
  evw::Loop auto_loop(evw::LoopFlag::Auto);
  CHECK(auto_loop.backend() != 0);
}

TEST_CASE("macro-proof names: watchers, run flags and error bits work as users spell them") {
  evw::Loop loop;
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);

  int got = 0;
  evw::Io io(loop, sv[0], evw::Event::Read, [&](evw::Io& w, int revents) {
    got |= revents;
    w.stop();
  });
  io.set_priority(evw::max_priority);
  io.data() = 42;
  io.start();
  REQUIRE(::write(sv[1], "x", 1) == 1);
  int ticks = 0;
  evw::Timer timer(loop, 1ms, 0s, [&](evw::Timer&, int revents) { ticks += revents == evw::Event::Timer; });
  timer.set_priority(evw::min_priority);
  timer.start();
  evw::Idle idle(loop, [](evw::Idle& w, int revents) {
    if (revents & evw::Event::Idle) w.stop();
  });
  idle.start();
  while (loop.run(evw::Run::Once)) {
  }
  CHECK(got == evw::Event::Read);
  CHECK(ticks == 1);
  CHECK(std::any_cast<int>(io.data()) == 42);
  CHECK(io.priority() == evw::max_priority);

  // One error bit for every watcher: a feed of Event::Error reaches the
  // callback as it is, whatever the watcher's type.
  int errors = 0;
  evw::Prepare prepare(loop, [&](evw::Prepare&, int revents) { errors += (revents & evw::Event::Error) != 0; });
  prepare.feed(evw::Event::Error);
  loop.run(evw::Run::NoWait);
  CHECK(errors == 1);

  // The class evw::Timer and the bit evw::Event::Timer live side by side.
  static_assert(!std::is_same_v<evw::Timer, decltype(evw::Event::Timer)>);
  loop.stop(evw::Break::All);
  loop.stop(evw::Break::One);
  loop.stop(evw::Break::Cancel);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_CASE("macro-proof names: every watcher type, config enum and coroutine name is reachable") {
  evw::Loop loop;
  auto noop = [](auto&, int) {};
  evw::Signal sig(loop, SIGUSR2, noop);
  evw::Periodic periodic(loop, 0.0, 1.0, noop);
  evw::Check check(loop, noop);
  evw::Prepare prepare(loop, noop);
  evw::Idle idle(loop, noop);
  evw::Stat stat(loop, "/", 0.0, noop);
  evw::Async async(loop, noop);
  evw::Fork fork(loop, noop);
  evw::Cleanup cleanup(loop, noop);
  evw::Loop inner(evw::Backend::Epoll);
  evw::Embed embed(loop, inner, noop);
  evw::Child child(evw::Loop::default_loop(), 0, noop);
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  evw::Priority pri(loop, sv[0], noop);
  CHECK(pri.fd() == sv[0]);
  evw::Poll poll(loop, sv[0], evw::Event::Read | evw::Event::RdHup, evw::PollMode::Edge, noop);
  CHECK(poll.mode() == evw::PollMode::Edge);
  const int modes[] = {evw::PollMode::Level, evw::PollMode::Edge, evw::PollMode::OneShot, evw::PollMode::Exclusive};
  CHECK((modes[0] | modes[1] | modes[2] | modes[3]) == 7);
  static_assert(std::is_same_v<decltype(evw::peer_hangup(loop, 0)), evw::detail::WatcherAwaitable<evw::Poll, int, int>>);
  CHECK(sig.signum() == SIGUSR2);
  CHECK_FALSE(check.is_active());
  CHECK(loop.watcher_count() == 12);  // child is in the default loop

  evw::GpioConfig gpio{.sysfs_root = "/nonexistent", .edge = evw::Edge::Both, .active_low = false, .debounce = 0.0};
  CHECK(gpio.edge == evw::Edge::Both);
  const evw::Edge edges[] = {evw::Edge::None, evw::Edge::Rising, evw::Edge::Falling, evw::Edge::Both};
  CHECK(sizeof edges / sizeof edges[0] == 4);
  evw::GpioLineConfig line{};
  line.bias = evw::Bias::PullUp;
  line.clock = evw::EventClock::Monotonic;
  CHECK(line.bias != evw::Bias::AsIs);
  CHECK(evw::Bias::Disabled != evw::Bias::PullDown);
  CHECK(evw::EventClock::Realtime != evw::EventClock::Monotonic);

  // Coroutines: a task sleeps, then reads.
  REQUIRE(::write(sv[1], "y", 1) == 1);
  auto task = [&]() -> evw::Task<int> {
    co_await evw::sleep(loop, 1ms);
    co_return co_await evw::readable(loop, sv[0]);
  };
  CHECK(evw::sync_wait(loop, task()) == evw::Event::Read);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_CASE("macro-proof names: the kernel-notification watchers, their configs and awaitables") {
  evw::Loop loop;
  auto noop = [](auto&, int) {};
  evw::Mounts mounts(loop, noop);
  evw::Attr attr(loop, "/proc/self/mountinfo", noop);
  CHECK(mounts.find("/") != nullptr);
  CHECK_FALSE(attr.value().empty());
  const evw::MountChange::Kind kinds[] = {evw::MountChange::Kind::Added, evw::MountChange::Kind::Removed,
                                          evw::MountChange::Kind::Changed};
  CHECK(sizeof kinds / sizeof kinds[0] == 3);
  evw::MountEntry entry;
  entry.mount_point = "/";
  CHECK(entry.id == 0);
  evw::PressureConfig config{.resource = evw::Resource::Cpu, .stall = evw::Stall::Some, .threshold = 100ms,
                             .window = 2s, .cgroup = ""};
  const evw::Resource resources[] = {evw::Resource::Memory, evw::Resource::Cpu, evw::Resource::Io};
  CHECK(sizeof resources / sizeof resources[0] == 3);
  CHECK(evw::Stall::Full != config.stall);
  const evw::PressureStats stats = evw::Pressure::parse("some avg10=1.50 avg60=0.00 avg300=0.00 total=7\n");
  CHECK(stats.some.avg10 == 1.5);
  CHECK(stats.some.total_us == 7);
  CHECK(sizeof(evw::CgroupEvents) > 0);
  static_assert(std::is_same_v<decltype(evw::child_exit(loop, 1)), evw::detail::ChildExitAwaitable>);
}
