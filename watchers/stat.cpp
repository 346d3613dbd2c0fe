#include "stat.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <utility>

#include "../core/access.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<400>) >= sizeof(ev_stat));
// attr()/prev() hand out libev's own buffers as struct stat.
static_assert(std::is_same_v<ev_statdata, struct stat>);

namespace {

void stat_callback(struct ev_loop*, ev_stat* w, int revents) noexcept {
  detail::dispatch(*static_cast<Stat*>(w->data), revents);
}

void check(const std::string& path, double interval) {
  if (path.empty()) detail::throw_invalid("Stat", "path", "is empty");
  if (path.find('\0') != std::string::npos)
    detail::throw_invalid("Stat", "path", "\"" + std::string(path.c_str()) + "\\0...\" contains a NUL byte");
  if (!(interval >= 0.0) || std::isinf(interval)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", interval);
    detail::throw_invalid("Stat", "interval", std::string(buf) + " must be finite and >= 0");
  }
}

}  // namespace

Stat::Stat(Loop& loop, std::string path, Seconds interval, Callback cb)
    : Watcher(loop, &ev_, "Stat", std::move(cb)) {
  check(path, interval);
  path_ = std::move(path);
  auto* w = detail::ev_of<ev_stat>(*this);
  ev_stat_set(w, path_.c_str(), interval);
  ev_set_cb(w, stat_callback);
  std::memset(&w->attr, 0, sizeof w->attr);
  std::memset(&w->prev, 0, sizeof w->prev);
}

Stat::~Stat() { stop(); }

Stat::Stat(Stat&& other) : Watcher(std::move(other), &ev_), path_(std::move(other.path_)) {
  finish_move(other, sizeof ev_);
}

void Stat::set(std::string path, Seconds interval) {
  check(path, interval);
  Frozen frozen = freeze();
  path_ = std::move(path);  // libev no longer looks at the old pointer: stopped
  ev_stat_set(detail::ev_of<ev_stat>(*this), path_.c_str(), interval);
  thaw(frozen);
}

double Stat::interval() const noexcept { return detail::ev_of<ev_stat>(*this)->interval; }
const struct stat& Stat::attr() const noexcept { return detail::ev_of<ev_stat>(*this)->attr; }
const struct stat& Stat::prev() const noexcept { return detail::ev_of<ev_stat>(*this)->prev; }

void Stat::refresh() {
  require_attached("refresh");
  ev_stat_stat(raw_loop(), detail::ev_of<ev_stat>(*this));
}

// libev's test for a change (stat_timer_cb): these fields, not memcmp.
static bool same(const ev_statdata& a, const ev_statdata& b) noexcept {
  return a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_mode == b.st_mode &&
         a.st_nlink == b.st_nlink && a.st_uid == b.st_uid && a.st_gid == b.st_gid &&
         a.st_rdev == b.st_rdev && a.st_size == b.st_size && a.st_atime == b.st_atime &&
         a.st_mtime == b.st_mtime && a.st_ctime == b.st_ctime;
}

// libev keeps a pointer to the path (now in this watcher's path_). And
// ev_stat_start lstat()s afresh: a change the old watcher had not noticed
// yet would become the new state without a callback, so it is checked here
// against the old state, as libev's own check does.
void Stat::rehome_start_impl(WatcherBase&, bool active) noexcept {
  auto* w = detail::ev_of<ev_stat>(*this);
  w->path = path_.c_str();
  if (!active) return;
  const ev_statdata seen = w->attr;
  ev_stat_start(raw_loop(), w);
  if (!same(seen, w->attr)) {
    w->prev = seen;
    refeed(EV_STAT);
  }
}

void Stat::start_impl() { ev_stat_start(raw_loop(), detail::ev_of<ev_stat>(*this)); }
void Stat::stop_impl() noexcept { ev_stat_stop(raw_loop(), detail::ev_of<ev_stat>(*this)); }

}  // namespace evw
