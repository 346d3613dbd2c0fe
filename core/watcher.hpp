// evw — what every watcher has: start/stop, activity, priority, user data,
// feed/invoke, membership in exactly one Loop, and moves.
//
// Caveats: watchers are movable, not copyable. libev keeps a watcher's
// address, so a move re-homes it: the moved-to watcher takes over the loop,
// callback, user data, priority, configuration and active state, and a
// pending event is delivered once, from the new object (stopped at the old
// address, started at the new one). The moved-from watcher is stopped and
// empty: detached from its loop, start()/feed()/invoke() throw
// std::logic_error, the destructor is safe, and move-assigning into it makes
// it a full watcher again. Moving a watcher from inside its own callback
// (directly, or through a std::vector that grows there) and moving a
// loop-owned watcher (Loop::add) throw std::logic_error. (A std::vector whose
// growth throws so keeps only its basic guarantee: the elements it had moved
// before the running watcher's are left moved-from.) A watcher whose Loop
// was destroyed is "detached" too: start() and feed() throw
// std::logic_error, everything else (stop, accessors, the destructor) stays
// safe.
#pragma once

#include <any>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
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
[[noreturn]] void throw_moved_from(const char* kind, const char* what);

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
  /// @throws std::logic_error if the watcher's Loop is gone or it was moved from;
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
  /// @brief User data, free for the application. Allocated at the first
  /// call (a watcher that never uses it carries one pointer for it).
  /// @throws std::bad_alloc at that first call.
  std::any& data() {
    if (!data_) data_ = std::make_unique<std::any>();
    return *data_;
  }
  /// @brief User data; an empty std::any if none was ever set.
  const std::any& data() const noexcept { return data_ ? *data_ : no_data(); }
  /// @brief The loop this watcher belongs to.
  /// @throws std::logic_error if the loop was destroyed.
  Loop& loop() const;
  /// @brief False once the watcher's Loop has been destroyed, and for a
  /// moved-from watcher.
  bool is_attached() const noexcept { return loop_ != nullptr; }
  /// @brief Queue an event for this watcher as if it had happened
  /// (ev_feed_event); the callback runs in the loop's next dispatch.
  /// @throws std::logic_error if the loop was destroyed or the watcher moved from.
  void feed(int revents);
  /// @brief Forget a pending event. @return its revents, or 0.
  int clear_pending() noexcept;

 protected:
  WatcherBase(Loop& loop, void* ev, const char* kind);

  // A move, in two steps around the derived type's own members. This
  // constructor only checks that `other` may move (it throws before anything
  // changes); the derived move constructor then moves its members (nothing
  // that can throw) and calls finish_move(other, sizeof its libev storage),
  // which takes over other's loop membership, user data, libev struct,
  // active state and pending event, and leaves other stopped and empty.
  WatcherBase(WatcherBase&& other, void* ev);
  void finish_move(WatcherBase& other, std::size_t ev_size) noexcept;
  // @throws std::logic_error if `other` may not be moved, or *this not be
  // replaced (a loop-owned watcher).
  void check_move(const WatcherBase& other) const;
  // Re-homing an active watcher: rehome_stop_impl() on the old object, then
  // its libev struct's bytes are copied to the new one (active and pending
  // cleared, data pointing to the new object), then rehome_start_impl(from,
  // active) on the new one, also for an inactive or detached watcher (to fix
  // what points into the object itself). Neither may throw: by default
  // stop_impl() and start_impl(), for types whose start cannot fail; the
  // others start without the checks a fresh start() makes.
  virtual void rehome_stop_impl() noexcept { stop_impl(); }
  virtual void rehome_start_impl(WatcherBase& from, bool active) noexcept;

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
  // Feed revents to this watcher from outside libev's dispatch.
  void refeed(int revents) noexcept;
  struct ::ev_loop* raw_loop() const noexcept;
  // "Io", "Timer", … for error messages (Watcher<W> names W).
  virtual const char* kind() const noexcept = 0;
  // The embedded libev watcher: at a fixed offset from the object.
  void* ev() const noexcept {
    return const_cast<char*>(reinterpret_cast<const char*>(this)) + ev_offset_;
  }

 private:
  friend class evw::Loop;
  friend struct Access;

  static const std::any& no_data() noexcept;

  // 48 bytes with the vtable pointer (sizes: README "Watcher sizes").
  Loop* loop_;
  WatcherBase* prev_ = nullptr;
  WatcherBase* next_ = nullptr;
  std::unique_ptr<std::any> data_;
  std::uint32_t ev_offset_;  // of the embedded libev watcher, from this
  bool owned_ = false;       // created by Loop::add, deleted by the loop
  bool moved_ = false;       // detached by a move (not by its loop's destruction)

 protected:
  // Two spare bytes, for a flag of the derived type's (Signal's).
  bool derived_flag_ = false;
};

// Inline (coroutines ask on every event). libev's flag: every libev watcher
// struct starts with `int active` (EV_WATCHER; checked in watcher.cpp).
inline bool WatcherBase::active_impl() const noexcept { return *static_cast<const int*>(ev()) != 0; }
inline bool WatcherBase::is_active() const noexcept { return loop_ != nullptr && active_impl(); }

// W's unqualified name, at compile time, from the compiler's own spelling of
// the function's signature (g++ and clang both say "W = evw::Io"): the name
// costs no byte per watcher.
template <class W>
constexpr std::string_view signature_naming() noexcept {
  return __PRETTY_FUNCTION__;
}
template <class W>
struct TypeName {
  static constexpr std::string_view full = signature_naming<W>();
  static constexpr std::size_t from = full.find("W = ") + 4;
  static constexpr std::string_view qualified = full.substr(from, full.find_first_of(";]", from) - from);
  static constexpr std::size_t colons = qualified.rfind("::");
  static constexpr std::string_view name =
      colons == std::string_view::npos ? qualified : qualified.substr(colons + 2);
  static constexpr std::array<char, name.size() + 1> text = [] {
    std::array<char, name.size() + 1> a{};
    for (std::size_t i = 0; i < name.size(); ++i) a[i] = name[i];
    return a;
  }();
};

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
  /// @brief Call the callback now, outside the loop; its exceptions reach the
  /// caller. (Not a dispatch: a move of the watcher from the callback is not
  /// refused then, and destroys the callback under it.)
  /// @throws std::logic_error on a moved-from watcher (it has no callback).
  void invoke(int revents) {
    if (!cb_) [[unlikely]] throw_moved_from(kind(), "invoke");
    cb_(static_cast<W&>(*this), revents);
  }
  /// @brief Replace the callback (also allowed inside the callback itself).
  /// @throws std::invalid_argument if cb is empty.
  void set_callback(Callback cb) { cb_ = checked(std::move(cb), kind()); }

 protected:
  Watcher(Loop& loop, void* ev, const char* kind, Callback cb)
      : WatcherBase(loop, ev, kind), cb_(checked(std::move(cb), kind)) {}
  // The first step of a move (see WatcherBase): the callback goes along.
  Watcher(Watcher&& other, void* ev) : WatcherBase(std::move(other), ev), cb_(std::move(other.cb_)) {}
  // W::operator=(W&&). Replacing a watcher is destroying it and constructing
  // the moved one in its place: the destructor already releases everything
  // (a Gpio's line, an Embed's guard) and the move constructor takes over the
  // rest. Everything that could refuse is checked first, so the move
  // constructor cannot throw once the old watcher is gone. (W is final: never
  // a base subobject, so the object is transparently replaced.)
  W& move_assign(W& other) {
    W& self = static_cast<W&>(*this);
    if (&self == &other) return self;
    check_move(other);
    std::destroy_at(&self);
    std::construct_at(&self, std::move(other));
    return self;
  }
  // For evw's own relays (Gpio::edge()): put cb (not empty) in place of the
  // callback and hand the old one back. Never while the callback runs.
  Callback exchange_callback(Callback cb) noexcept { return std::exchange(cb_, std::move(cb)); }
  const char* kind() const noexcept final { return TypeName<W>::text.data(); }

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
