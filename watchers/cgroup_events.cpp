#include "cgroup_events.hpp"

#include <fcntl.h>

#include <string>
#include <string_view>

#include "../core/access.hpp"
#include "../coro/edge.hpp"

namespace evw {

static_assert(sizeof(detail::EvStorage<32>) >= sizeof(ev_watcher));

namespace {

std::string events_path(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + "/cgroup.events";
}

}  // namespace

struct detail::CgroupEventsTrampoline {
  static void on_event(struct ev_loop*, ev_watcher* w, int revents) noexcept {
    static_cast<CgroupEvents*>(w->data)->on_condition(revents);
  }
  static void direct(int revents, void* self) {
    static_cast<CgroupEvents*>(self)->on_condition(revents);
  }
};

CgroupEvents::CgroupEvents(Loop& loop, std::string cgroup, Callback cb)
    : ExceptWatcher(loop, &ev_, "CgroupEvents", std::move(cb)) {
  if (cgroup.empty()) detail::throw_invalid("CgroupEvents", "cgroup", "is empty");
  node_.set_ev(&ev_);
  node_.self = this;
  node_.call = detail::CgroupEventsTrampoline::direct;
  ev_set_cb(detail::ev_of<ev_watcher>(*this), detail::CgroupEventsTrampoline::on_event);
  // The priming read: kernfs reports a change at once on a file never read.
  detail::open_attr(file_, events_path(cgroup), O_RDONLY, text_, "CgroupEvents");
  detail::strip_newlines(text_);
  node_.fd = file_.fd();
  cgroup_ = std::move(cgroup);
  parse();
}

CgroupEvents::~CgroupEvents() { stop(); }

// The file goes along: other is left with none, so its destructor closes nothing.
CgroupEvents::CgroupEvents(CgroupEvents&& other)
    : ExceptWatcher(std::move(other), &ev_),
      file_(std::move(other.file_)),
      cgroup_(std::move(other.cgroup_)),
      text_(std::move(other.text_)),
      scratch_(std::move(other.scratch_)),
      populated_(other.populated_),
      frozen_(other.frozen_),
      error_(other.error_) {
  finish_move(other, sizeof ev_);
  detail::EdgeHook<CgroupEvents>::moved(other, *this);  // a coroutine awaiting next() follows
}

void CgroupEvents::set(std::string cgroup) {
  if (cgroup.empty()) detail::throw_invalid("CgroupEvents", "cgroup", "is empty");
  detail::AttrFile fresh;
  std::string text;
  detail::open_attr(fresh, events_path(cgroup), O_RDONLY, text, "CgroupEvents");
  detail::strip_newlines(text);
  Frozen frozen = freeze();
  file_ = std::move(fresh);
  node_.fd = file_.fd();
  text_ = std::move(text);
  cgroup_ = std::move(cgroup);
  error_.clear();
  parse();
  thaw(frozen);
}

void CgroupEvents::start_impl() {
  ExceptWatcher::start_impl();
  error_.clear();
}

// "populated 1\nfrozen 0": one "key value" per line; keys a newer kernel adds are skipped.
void CgroupEvents::parse() noexcept {
  bool populated = false, frozen = false;
  std::string_view rest = text_;
  while (!rest.empty()) {
    const std::size_t end = rest.find('\n');
    const std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    const std::size_t space = line.find(' ');
    if (space == std::string_view::npos) continue;
    const std::string_view key = line.substr(0, space);
    const bool on = line.substr(space + 1) != "0";
    if (key == "populated") populated = on;
    else if (key == "frozen") frozen = on;
  }
  populated_ = populated;
  frozen_ = frozen;
}

void CgroupEvents::on_condition(int revents) noexcept {
  if (detail::Access::failed(*detail::Access::loop(*this))) {
    detail::dispatch(*this, revents);  // deferred untouched, read when fed back
    return;
  }
  // Read from offset 0 before calling back: that clears the condition.
  const char* op;
  if (const int err = file_.reread(scratch_, &op, detail::AttrFile::default_max, detail::AttrFile::End::ShortRead);
      err != 0) {
    error_ = std::error_code(err, std::generic_category());
    stop();  // a removed group stays "ready" forever: do not spin on it
    detail::dispatch(*this, Event::Error);
    return;
  }
  detail::strip_newlines(scratch_);
  text_.swap(scratch_);
  parse();
  detail::dispatch(*this, revents);  // may destroy *this: touch nothing after
}

}  // namespace evw
