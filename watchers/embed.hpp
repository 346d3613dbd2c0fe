// evw::Embed — run one loop inside another (libev's ev_embed).
//
// The embedding loop watches the other loop's kernel queue; when that has
// events, the Embed callback runs, and it should call sweep() (the
// constructor without a callback does just that), which runs one
// non-blocking iteration of the other loop in the same thread. Typical use:
// put sockets on a loop with a fast backend (epoll) and embed it into a
// loop that must use another one.
//
// Caveats: the other loop's backend must be embeddable (ev_embeddable_backends:
// on Linux epoll, so create it as Loop(Backend::Epoll); libev also lists io_uring,
// which it cannot embed, so evw refuses it), it must not be the
// embedding loop itself, loops may not embed each other in a circle, and a
// chain of embedded loops has at most 4 (the kernel's epoll nesting limit) (all
// checked: std::invalid_argument / std::logic_error); an Embed stopped after
// its loop ran counts until one of the two loops is destroyed, since libev
// leaves its kernel registration behind. Both loops run in one
// thread. The other loop's timers and idle watchers do not wake the
// embedding loop: they run only when something else makes it sweep, so keep
// timers in the embedding loop. An exception thrown by a callback of the other
// loop comes out of sweep(), hence out of the embedding loop's run(); if libev
// ran the other loop by itself (it does when watchers were just started there)
// it comes out of the next sweep(). If the other loop is destroyed first, the
// Embed stops and start() throws std::logic_error (it keeps one internal
// Cleanup watcher on the other loop to notice, counted by its
// watcher_count()). After fork(), call fork() on both loops.
//
// revents: Event::Embed (only with a callback; without one the other loop is swept
// automatically). Plus whatever feed() passes.
#pragma once

#include <memory>

#include "../core/loop.hpp"
#include "../core/watcher.hpp"
#include "cleanup.hpp"

namespace evw {

/// Runs the loop `other` from within `loop`.
class Embed final : public detail::Watcher<Embed> {
 public:
  /// @brief A stopped watcher embedding `other` into `loop`; cb is called when
  /// `other` has events and should call sweep().
  /// @throws std::invalid_argument if other is loop, or other's backend is
  ///         not embeddable; if cb is empty.
  Embed(Loop& loop, Loop& other, Callback cb);
  /// @brief As above, with a callback that calls sweep().
  Embed(Loop& loop, Loop& other);
  ~Embed();
  /// @brief Move: this watcher continues where `other` was (loop, callback,
  /// data, priority, configuration, active state; a pending event is
  /// delivered once, from here); `other` is left stopped and empty.
  /// The other loop stays embedded throughout.
  /// @throws std::logic_error from inside other's own callback, or if either
  ///         watcher is loop-owned; nothing changes then.
  Embed(Embed&& other);
  Embed& operator=(Embed&& other) { return move_assign(other); }
  /// @brief Embed another loop; allowed while active or pending.
  /// @throws as the constructor, and as start().
  void set(Loop& other);
  /// @brief Run one non-blocking iteration of the other loop (ev_embed_sweep).
  /// @throws std::logic_error if the other loop is gone; what its callbacks throw.
  void sweep();
  /// @brief The embedded loop. @throws std::logic_error if it was destroyed.
  Loop& other() const;
  /// @brief False once the embedded loop has been destroyed.
  bool other_exists() const noexcept { return guard_ != nullptr && guard_->is_attached(); }

 private:
  // @throws std::logic_error if the other loop is gone or embedding it would
  //         close a circle of embedded loops.
  void start_impl() override;
  void stop_impl() noexcept override;
  void rehome_stop_impl() noexcept override;
  void rehome_start_impl(WatcherBase& from, bool active) noexcept override;
  void start_libev() noexcept;
  void watch(Loop& other);

  Loop* other_ = nullptr;
  std::unique_ptr<Cleanup> guard_;  // on the other loop: stops us when it dies
  unsigned started_at_ = 0;  // the embedding loop's iteration at start()
  detail::EvStorage<360> ev_;
};

}  // namespace evw
