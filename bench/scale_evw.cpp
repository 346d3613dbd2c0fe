// Watchers at scale on evw: see scale.h. Each watcher in a std::unique_ptr of its own, as the
// libev program mallocs each one.
#include <evw/evw.hpp>

#include <memory>
#include <vector>

#include "scale.h"

static evw::Loop* loop;

static void timers() {
  std::vector<std::unique_ptr<evw::Timer>> t(static_cast<std::size_t>(scale_n));
  for (int i = 0; i < scale_n; i++) {
    t[i] = std::make_unique<evw::Timer>(*loop, scale_after(i), 0.0, [](evw::Timer&, int) {});
    t[i]->start();
  }
  for (auto& w : t) w->stop();
  t.clear();
}

static void ios() {
  std::vector<std::unique_ptr<evw::Io>> w(static_cast<std::size_t>(scale_n));
  for (int i = 0; i < scale_n; i++) {
    w[i] = std::make_unique<evw::Io>(*loop, scale_fds[2 * i], evw::Event::Read, [](evw::Io&, int) {});
    w[i]->start();
  }
  loop->run(evw::Run::NoWait);  // libev hands the fds to epoll here
  for (auto& x : w) x->stop();
  loop->run(evw::Run::NoWait);  // ...and takes them out here
  w.clear();
}

int main(int argc, char** argv) {
  scale_parse(argc, argv);
  evw::Loop l;
  loop = &l;
  scale_measured(scale_io ? ios : timers);
  scale_report("evw");
  return 0;
}
