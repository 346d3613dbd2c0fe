// evw — what every watcher has: start/stop, activity, priority, user data,
// feed/invoke, and membership in exactly one Loop.
//
// Caveats: watchers are neither copyable nor movable (libev keeps their
// address). A watcher whose Loop was destroyed is "detached": start() and
// feed() throw std::logic_error, everything else (stop, accessors, the
// destructor) stays safe.
#pragma once

#include <any>
#include <cstddef>
#include <functional>
#include <utility>

#include "events.hpp"
#include "callbacks.hpp"
#include "function.hpp"

struct ev_loop;

namespace evw {

class Loop;

namespace detail {

struct Access;

[[noreturn]] void throw_empty_callback(const char* kind);

/// Raw storage for the libev watcher struct embedded in each evw watcher.
/// Its size is checked against libev's headers in the watcher's source file,
/// which keeps <ev.h> out of the public headers.
template <std::size_t N>
struct alignas(8) EvStorage {
  unsigned char bytes[N];
};

/// The part of a watcher that does not depend on its type.
class WatcherBase {
 public:
  WatcherBase(const WatcherBase&) = delete;
  WatcherBase& operator=(const WatcherBase&) = delete;
  virtual ~WatcherBase();

  /// @brief Start watching. Does nothing if already active.
  /// @throws std::logic_error if the watcher's Loop is gone;
  ///         std::system_error if the OS refuses (each watcher documents which).
  void start();
  /// @brief Stop watching and clear a pending event. Safe at any time, also
  /// inside the watcher's own callback and on a detached watcher.
  void stop() noexcept;
  /// @brief True between a successful start() and stop().
  bool is_active() const noexcept;
  /// @brief True while an event waits in the loop for this watcher's callback.
  bool is_pending() const noexcept;
  /// @brief The priority, min_priority..max_priority (default 0).
  int priority() const noexcept;
  /// @brief Change the priority; allowed while active or pending, a pending
  /// event is kept and delivered once at the new priority.
  /// @throws std::out_of_range unless min_priority <= pri <= max_priority.
  void set_priority(int pri);
  /// @brief User data, free for the application.
  std::any& data() noexcept { return data_; }
  const std::any& data() const noexcept { return data_; }
  /// @brief The loop this watcher belongs to.
  /// @throws std::logic_error if the loop was destroyed.
  Loop& loop() const;
  /// @brief False once the watcher's Loop has been destroyed.
  bool is_attached() const noexcept { return loop_ != nullptr; }
  /// @brief Queue an event for this watcher as if it had happened
  /// (ev_feed_event); the callback runs in the loop's next dispatch.
  /// @throws std::logic_error if the loop was destroyed.
  void feed(int revents);
  /// @brief Forget a pending event. @return its revents, or 0.
  int clear_pending() noexcept;

 protected:
  WatcherBase(Loop& loop, void* ev, const char* kind);

  virtual void start_impl() = 0;           // attached and not active
  virtual void stop_impl() noexcept = 0;   // attached and active
  // stop() only (not the freeze guard), before the pending event is taken:
  // a watcher whose loop may still hold an undelivered event for it elsewhere
  // (Signal) turns it into a pending event, which stop() then drops.
  virtual void discard_impl() noexcept {}
  virtual bool active_impl() const noexcept;
  // Pending state: libev's by default; the EPOLLPRI table keeps some itself.
  virtual int take_pending() noexcept;  // clear it, return its revents
  virtual bool pending_impl() const noexcept;
  // Cleanup watchers stay active until the loop's own destruction runs them.
  virtual bool runs_at_loop_destroy() const noexcept { return false; }
  // A type that cannot take every priority in min_priority..max_priority refuses here
  // (Child: libev runs child watchers at max_priority only). Throws std::invalid_argument.
  virtual void check_priority(int /*pri*/) const {}

  // The freeze guard: a change to an active or pending watcher stops it,
  // changes it, and restarts it, re-feeding the event that was pending.
  struct Frozen {
    int revents;
    bool active;
  };
  Frozen freeze() noexcept;
  void thaw(Frozen frozen);

  void require_attached(const char* what) const;
  struct ::ev_loop* raw_loop() const noexcept;
  const char* kind() const noexcept { return kind_; }
  void* ev() const noexcept { return ev_; }

 private:
  friend class evw::Loop;
  friend struct Access;

  Loop* loop_;
  void* ev_;           // the embedded libev watcher
  const char* kind_;   // "Io", "Timer", … for error messages
  WatcherBase* prev_ = nullptr;
  WatcherBase* next_ = nullptr;
  bool owned_ = false;  // created by Loop::add, deleted by the loop
  std::any data_;
};

// Inline (coroutines ask on every event). libev's flag: every libev watcher
// struct starts with `int active` (EV_WATCHER; checked in watcher.cpp).
inline bool WatcherBase::active_impl() const noexcept { return *static_cast<const int*>(ev_) != 0; }
inline bool WatcherBase::is_active() const noexcept { return loop_ != nullptr && active_impl(); }

/// The typed part: the callback `void(W&, int revents)`.
template <class W>
class Watcher : public WatcherBase {
 public:
  /// Any callable `void(W& watcher, int revents)`: a lambda (capturing or
  /// not, also move-only), a function pointer, a functor, a std::function.
  using Callback = Function<void(W&, int)>;

  /// @brief True between a successful start() and stop(). (WatcherBase's,
  /// bound at compile time where W's own override is visible here.)
  bool is_active() const noexcept {
    if constexpr (requires(const W& w) { w.active_impl(); })
      return this->is_attached() && static_cast<const W&>(*this).active_impl();
    else
      return WatcherBase::is_active();
  }
  /// @brief Call the callback now, outside the loop; its exceptions reach the caller.
  void invoke(int revents) { cb_(static_cast<W&>(*this), revents); }
  /// @brief Replace the callback (also allowed inside the callback itself).
  /// @throws std::invalid_argument if cb is empty.
  void set_callback(Callback cb) { cb_ = checked(std::move(cb), kind()); }

 protected:
  Watcher(Loop& loop, void* ev, const char* kind, Callback cb)
      : WatcherBase(loop, ev, kind), cb_(checked(std::move(cb), kind)) {}
  // For evw's own relays (Gpio::edge()): put cb (not empty) in place of the
  // callback and hand the old one back. Never while the callback runs.
  Callback exchange_callback(Callback cb) noexcept { return std::exchange(cb_, std::move(cb)); }

 private:
  friend struct Access;
  static Callback checked(Callback cb, const char* kind) {
    if (!cb) throw_empty_callback(kind);
    return cb;
  }
  Callback cb_;
};

}  // namespace detail
}  // namespace evw
