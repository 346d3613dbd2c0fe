#include "watcher.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>

#include "access.hpp"
#include "loop.hpp"

namespace evw::detail {

static ev_watcher* as_ev(void* p) noexcept { return static_cast<ev_watcher*>(p); }

static std::uint32_t offset_of(const WatcherBase* self, const void* ev) noexcept {
  return static_cast<std::uint32_t>(static_cast<const char*>(ev) - reinterpret_cast<const char*>(self));
}

WatcherBase::WatcherBase(Loop& loop, void* ev, const char*) : loop_(&loop), ev_offset_(offset_of(this, ev)) {
  ev_init(as_ev(ev), nullptr);
  as_ev(ev)->data = this;
  loop.link(*this);
}

WatcherBase::WatcherBase(WatcherBase&& other, void* ev) : loop_(nullptr), ev_offset_(offset_of(this, ev)) {
  check_move(other);
}

const std::any& WatcherBase::no_data() noexcept {
  static const std::any none;
  return none;
}

void WatcherBase::check_move(const WatcherBase& other) const {
  if (other.loop_ != nullptr && other.loop_->is_running(other))
    throw std::logic_error(std::string("evw::") + other.kind() +
                           ": cannot move a watcher from inside its own callback (the callback "
                           "would be destroyed while it runs)");
  if (other.owned_ || owned_)
    throw std::logic_error(std::string("evw::") + other.kind() +
                           ": a loop-owned watcher (Loop::add) keeps its address: it can be neither "
                           "moved from nor moved into");
}

void WatcherBase::finish_move(WatcherBase& other, std::size_t ev_size) noexcept {
  data_ = std::move(other.data_);
  moved_ = other.moved_;
  Loop* loop = other.loop_;
  int revents = 0;
  bool active = false;
  if (loop != nullptr) {
    // A pending event (libev's, or one the EPOLLPRI table queued) is taken
    // here and fed again to the new address below.
    revents = other.take_pending();
    active = other.active_impl();
    if (active) other.rehome_stop_impl();
    loop->replace(other, *this);
    loop_ = loop;
  }
  std::memcpy(ev(), other.ev(), ev_size);
  as_ev(ev())->active = 0;
  as_ev(ev())->pending = 0;
  as_ev(ev())->data = this;
  rehome_start_impl(other, active);
  other.loop_ = nullptr;
  other.moved_ = true;
  if (revents != 0) refeed(revents);
}

void WatcherBase::rehome_start_impl(WatcherBase&, bool active) noexcept {
  if (active) start_impl();  // only for types whose start_impl cannot throw
}

WatcherBase::~WatcherBase() {
  // Each watcher's own destructor has stopped it (stop_impl is gone by now).
  if (loop_ != nullptr) {
    loop_->forget_running(*this);
    ev_clear_pending(loop_->raw(), as_ev(ev()));
    if (loop_->failed_) loop_->forget(*this);
    loop_->unlink(*this);
  }
}

void WatcherBase::start() {
  require_attached("start");
  if (!is_active()) start_impl();
}

void WatcherBase::stop() noexcept {
  if (loop_ == nullptr) return;
  const bool active = is_active();
  if (active) discard_impl();
  take_pending();
  if (loop_->failed_) loop_->forget(*this);
  if (active) stop_impl();
}

// WatcherBase::active_impl(), inline in the header, reads ev_is_active() as the first int.
static_assert(offsetof(ev_watcher, active) == 0 && std::is_same_v<decltype(ev_watcher::active), int>,
              "libev's watcher struct no longer starts with int active");

bool WatcherBase::is_pending() const noexcept { return loop_ != nullptr && pending_impl(); }

int WatcherBase::take_pending() noexcept { return ev_clear_pending(loop_->raw(), as_ev(ev())); }

bool WatcherBase::pending_impl() const noexcept { return ev_is_pending(as_ev(ev())); }

int WatcherBase::priority() const noexcept { return ev_priority(as_ev(ev())); }

void WatcherBase::set_priority(int pri) {
  if (pri < min_priority || pri > max_priority)
    throw std::out_of_range(std::string("evw::") + kind() + "::set_priority: priority " +
                            std::to_string(pri) + " is outside [" + std::to_string(min_priority) +
                            ", " + std::to_string(max_priority) + "]");
  check_priority(pri);
  if (pri == priority()) return;
  Frozen frozen = freeze();
  ev_set_priority(as_ev(ev()), pri);
  thaw(frozen);
}

Loop& WatcherBase::loop() const {
  require_attached("loop");
  return *loop_;
}

void WatcherBase::feed(int revents) {
  require_attached("feed");
  Access::note_feed(*loop_);
  ev_feed_event(loop_->raw(), ev(), revents);
}

int WatcherBase::clear_pending() noexcept { return loop_ != nullptr ? take_pending() : 0; }

WatcherBase::Frozen WatcherBase::freeze() noexcept {
  if (loop_ == nullptr) return {0, false};
  Frozen frozen{take_pending(), is_active()};
  if (frozen.active) stop_impl();
  return frozen;
}

void WatcherBase::thaw(Frozen frozen) {
  if (loop_ == nullptr) return;
  if (frozen.active) start_impl();  // if this throws, the watcher stays stopped
  if (frozen.revents != 0) refeed(frozen.revents);
}

void WatcherBase::refeed(int revents) noexcept {
  Access::note_feed(*loop_);
  ev_feed_event(loop_->raw(), ev(), revents);
}

void WatcherBase::require_attached(const char* what) const {
  if (loop_ == nullptr) [[unlikely]] {
    if (moved_) throw_moved_from(kind(), what);
    throw std::logic_error(std::string("evw::") + kind() + "::" + what +
                           ": the watcher's loop has been destroyed");
  }
}

struct ::ev_loop* WatcherBase::raw_loop() const noexcept {
  return loop_ != nullptr ? loop_->raw() : nullptr;
}

void throw_moved_from(const char* kind, const char* what) {
  throw std::logic_error(std::string("evw::") + kind + "::" + what +
                         ": the watcher was moved from (it is empty until a watcher is moved into it)");
}

void throw_empty_callback(const char* kind) {
  throw std::invalid_argument(std::string("evw::") + kind + ": the callback is empty");
}

void throw_invalid(const char* kind, const char* what, const std::string& detail) {
  throw std::invalid_argument(std::string("evw::") + kind + ": " + what + " " + detail);
}

void throw_system(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

}  // namespace evw::detail
